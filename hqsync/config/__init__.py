"""The configuration language: load YAML with locations, render, validate.

``load_config`` is the entry point for every command that needs the desired
state; ``load_project`` is enough for commands that only need the instance.
"""

from __future__ import annotations

from hqsync.config.documents import Document
from hqsync.config.loader import LoadedConfig, ProjectContext, load_config, load_project
from hqsync.config.secrets import SecretValue
from hqsync.errors import ConfigError, Problem

__all__ = [
    "ConfigError",
    "Document",
    "LoadedConfig",
    "Problem",
    "ProjectContext",
    "SecretValue",
    "load_config",
    "load_project",
]

"""Load the project file and the resource documents into one validated config."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hqsync.config.checks import Checker
from hqsync.config.documents import (
    PROJECT_FILE,
    VALIDATION_CONTEXT,
    Document,
    display_path,
    read_documents,
)
from hqsync.config.messages import validation_problems
from hqsync.config.models import (
    DEFAULT_STORE,
    ExternalService,
    Instance,
    Project,
    Rule,
    Site,
    SiteTemplate,
    project_problems,
)
from hqsync.config.render import Renderer
from hqsync.config.secrets import SecretValue
from hqsync.config.yamlload import YamlDocument, node_at, problem_at, read_stream
from hqsync.errors import ConfigError, Problem

log = logging.getLogger(__name__)

Location = tuple[str, int, int]


@dataclass(frozen=True)
class ProjectContext:
    """The project file and the instance chosen from it."""

    project: Project
    instance_name: str
    instance: Instance
    store_url: str
    config_dir: Path
    project_file: str | None = None


@dataclass(frozen=True)
class LoadedConfig(ProjectContext):
    """The desired state: every resource validated, templates expanded, secrets read."""

    variables: dict[str, Any] = field(default_factory=dict)
    services: dict[str, ExternalService] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    rules: dict[tuple[str, str], Rule] = field(default_factory=dict)
    templates: dict[str, SiteTemplate] = field(default_factory=dict)
    secrets: dict[tuple[str, str], SecretValue] = field(
        default_factory=dict, repr=False
    )
    documents: list[Document] = field(default_factory=list, repr=False)
    locations: dict[tuple[str, tuple[str, ...]], Location] = field(
        default_factory=dict, repr=False
    )

    def location(self, kind: str, *key: str) -> Location:
        """Return file, line and column of a document; rules take (site, name)."""
        found = self.locations.get((kind, tuple(key)))
        if found is not None:
            return found
        return (str(self.config_dir), 1, 1)

    def counts(self) -> dict[str, int]:
        """Count the resources by kind, templates expanded."""
        return {
            "ExternalService": len(self.services),
            "Site": len(self.sites),
            "Rule": len(self.rules),
            "SiteTemplate": len(self.templates),
        }


def load_project(
    config_dir: str | os.PathLike[str],
    instance: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProjectContext:
    """Read ``hqsync.yaml`` (or use the default project) and pick the instance."""
    directory = Path(config_dir)
    environ = os.environ if environ is None else environ
    if not directory.is_dir():
        raise ConfigError(
            [Problem(display_path(directory), 1, 1, "config directory not found")]
        )
    path = directory / PROJECT_FILE
    if not path.exists() and not path.is_symlink():
        return _context(Project(), None, directory, instance, None)
    display = display_path(path)
    problems: list[Problem] = []
    renderer = Renderer({}, environ)
    raws = list(read_stream(path, display, renderer.render, problems))
    project = _validate_project(raws, display, problems)
    if problems or project is None:
        raise ConfigError(problems or [Problem(display, 1, 1, "invalid project file")])
    return _context(project, raws[0] if raws else None, directory, instance, display)


def _validate_project(
    raws: list[YamlDocument], display: str, problems: list[Problem]
) -> Project | None:
    if not raws:
        return Project()
    for extra in raws[1:]:
        problems.append(
            problem_at(display, extra.node, f"{PROJECT_FILE} holds one document")
        )
    raw = raws[0]
    if not isinstance(raw.data, dict):
        problems.append(
            problem_at(display, raw.node, f"{PROJECT_FILE} must be a mapping")
        )
        return None
    try:
        project = Project.model_validate(raw.data, context=VALIDATION_CONTEXT)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, Project, raw))
        return None
    for field_path, message in project_problems(project):
        problems.append(problem_at(display, node_at(raw.node, field_path), message))
    return None if problems else project


def _context(
    project: Project,
    raw: YamlDocument | None,
    directory: Path,
    instance: str | None,
    display: str | None,
) -> ProjectContext:
    name = instance or project.default_instance
    if name not in project.instances:
        known = ", ".join(sorted(project.instances))
        file = display or display_path(directory / PROJECT_FILE)
        line, column = (raw.line, raw.column) if raw else (1, 1)
        message = f"unknown instance '{name}'; instances defined: {known}"
        if display is None:
            message += f" (there is no {PROJECT_FILE}, so only the default exists)"
        raise ConfigError([Problem(file, line, column, message)])
    chosen = project.instances[name]
    store_url = chosen.store or DEFAULT_STORE.format(instance=name)
    return ProjectContext(project, name, chosen, store_url, directory, display)


def load_config(
    config_dir: str | os.PathLike[str],
    instance: str | None = None,
    cli_vars: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load, render and validate every file; raise ConfigError with every problem."""
    environ = os.environ if environ is None else environ
    context = load_project(config_dir, instance, environ)
    variables = {
        **context.project.variables.get(context.instance_name, {}),
        **(cli_vars or {}),
    }
    problems: list[Problem] = []

    # Parse and validate each document on its own, then check across documents.
    # Loading creates millions of objects that mostly stay alive, so the cyclic
    # garbage collector's passes find little to free. With it running, a
    # 20,000-rule load took about 30% longer (bench/config_load.py). Cycles,
    # which only a recursive alias makes, are collected once it runs again.
    renderer = Renderer(variables, environ)
    collecting = gc.isenabled()
    gc.disable()
    try:
        invalid: set[tuple[str, str]] = set()
        documents = read_documents(
            context.config_dir, renderer.render, problems, invalid
        )
        checker = Checker(
            documents,
            context.instance_name,
            context.instance,
            context.config_dir,
            environ,
            invalid,
        )
        result = checker.run()
    finally:
        if collecting:
            gc.enable()
    problems.extend(checker.problems)
    log.info(
        "load_config: instance=%s documents=%d problems=%d",
        context.instance_name,
        len(documents),
        len(problems),
    )
    if problems:
        raise ConfigError(problems)

    return LoadedConfig(
        project=context.project,
        instance_name=context.instance_name,
        instance=context.instance,
        store_url=context.store_url,
        config_dir=context.config_dir,
        project_file=context.project_file,
        variables=variables,
        services=result.services,
        sites=result.sites,
        rules=result.rules,
        templates=result.templates,
        secrets=result.secrets,
        documents=documents,
        locations=result.locations,
    )

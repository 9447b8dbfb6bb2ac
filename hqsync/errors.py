"""The one exception tree of hqsync.

Every error a user can cause derives from :class:`HqsyncError`. The CLI maps
the tree to exit codes in one place (``hqsync.cli``), so library code raises
and never exits. Anything else that escapes is a bug and exits with 3.

::

    HqsyncError
    ├── ConfigError            invalid configuration (carries every Problem)
    ├── StoreError             the instance store cannot be opened or used
    │   ├── SchemaVersionError     the store is newer than this hqsync
    │   └── LockTimeout            another apply holds the instance lock
    ├── PlanError              a plan cannot be made or applied
    │   ├── StalePlan              a saved plan no longer matches store or config
    │   └── UnsafePlan             a safety check failed; --force overrides some
    ├── EventError             a trigger event is invalid
    ├── DeliveryError          the runner cannot deliver (not a failed attempt)
    ├── AuditError             an audit query, export or retry is invalid
    ├── TemplateError          a site template cannot be exported or imported
    ├── OutputError            an output file (--out) cannot be written
    └── SandboxError           the sandbox receiver cannot be configured or started

This module imports nothing from hqsync, so every package may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


class HqsyncError(Exception):
    """Base class of every error a user can cause."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, at a place in a file."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(HqsyncError):
    """The configuration is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column))
        count = len(self.problems)
        noun = "error" if count == 1 else "errors"
        lines = [str(problem) for problem in self.problems]
        super().__init__("\n".join([*lines, f"{count} {noun} in configuration"]))


class StoreError(HqsyncError):
    """The instance store cannot be opened, migrated or written."""


class SchemaVersionError(StoreError):
    """The store was migrated by a newer hqsync than this one."""


class LockTimeout(StoreError):
    """Another process holds the instance lock past the lock timeout."""


class PlanError(HqsyncError):
    """A plan cannot be made, saved, read or applied."""


class StalePlan(PlanError):
    """A saved plan was made against another store serial or configuration."""


class UnsafePlan(PlanError):
    """A plan fails a safety check (threshold, service in use, active limit)."""


class EventError(HqsyncError):
    """A trigger event is invalid."""


class DeliveryError(HqsyncError):
    """The runner cannot work at all (not a failed delivery attempt)."""


class AuditError(HqsyncError):
    """An audit query, export, retry or prune request is invalid."""


class TemplateError(HqsyncError):
    """A site template cannot be exported or imported."""


class OutputError(HqsyncError):
    """An output file cannot be written, or would overwrite files without --force."""


class SandboxError(HqsyncError):
    """The sandbox receiver has an invalid setting or cannot listen."""

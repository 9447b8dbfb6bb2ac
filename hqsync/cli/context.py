"""Shared state of every command: global options, logging, the output console."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
from dotenv import dotenv_values
from rich.console import Console

# Attributes every LogRecord has; anything else came from ``extra=`` and goes
# into the JSON record as a field.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime"}
)


@dataclass
class AppContext:
    """Global options of one ``hqsync`` invocation."""

    config_dir: str
    instance_name: str | None
    cli_vars: dict[str, str]
    verbose: int = 0
    cache: dict[str, Any] = field(default_factory=dict)


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """Parse repeated ``--var KEY=VALUE`` options into a dict."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--var'")
        result[key.strip()] = value
    return result


def load_env_file(path: str) -> None:
    """Set the variables of a dotenv file that the environment does not set already."""
    for key, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(key, value)


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object, with ``extra`` fields included."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(verbose: int, log_format: str) -> None:
    """Send log records to stderr: warnings by default, info with -v, debug with -vv."""
    if verbose == 0:
        level = logging.WARNING
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and a signed URL is a secret.
    for name in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # SQLAlchemy logs every statement and Alembic its set-up: only -vvv shows them.
    sql_level = logging.DEBUG if verbose >= 3 else logging.WARNING
    for name in ("sqlalchemy", "alembic"):
        logging.getLogger(name).setLevel(sql_level)


# Rich wraps to 80 columns when stdout is not a terminal; a pipe or a file
# gets one line per table row instead.
PIPE_WIDTH = 240


def output_console() -> Console:
    """Return the console for user output: terminal width, or wide in a pipe."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=PIPE_WIDTH)
    return console

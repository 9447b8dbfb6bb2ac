"""Helpers for the configuration tests: write a config tree, run the CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner, Result

from hqsync.cli import cli

SERVICE = """\
kind: ExternalService
name: intake
url: https://intake.example.invalid/hook
auth:
  type: header
  key: {from_env: HQ_TEST_KEY}
"""

SITE = """\
kind: Site
name: litigation
isheets:
  - name: matters
    columns:
      - {name: matter_id}
      - {name: status, type: choice, choices: [Open, Closed]}
folders: [/Contracts]
"""

RULE = """\
kind: Rule
name: closed
site: litigation
trigger: {type: isheet_item_updated, isheet: matters}
conditions:
  - {column: status, operator: changed_to, value: Closed}
actions:
  - {type: send_to_external_service, service: intake, columns: [matter_id]}
"""

TEST_ENVIRON = {"HQ_TEST_KEY": "test-key-value"}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path to text) under ``root`` and return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def run_cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run ``hqsync ARGS`` in-process; HQ_TEST_KEY is set, HQ_TEST_MISSING unset."""
    environment: dict[str, str | None] = {**TEST_ENVIRON, "HQ_TEST_MISSING": None}
    environment.update(env or {})
    return CliRunner(env=environment).invoke(cli, list(args), catch_exceptions=False)

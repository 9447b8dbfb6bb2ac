"""Helpers for plan tests: config folders written from YAML, plan and apply."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

from hqsync.config import LoadedConfig, load_config
from hqsync.plan import ApplyResult, Plan, apply_plan, make_plan
from hqsync.store import Store

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def sandbox_environ() -> dict[str, str]:
    """Read configs/sandbox.env the way --env-file does (quotes stripped)."""
    environ: dict[str, str] = {}
    for line in (CONFIGS / "sandbox.env").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        environ[key.strip()] = value
    return environ


PROJECT = """\
default_instance: local
instances:
  local:
    store: "{store}"
    allow_http: true
    {extra}
"""


class ConfigDir:
    """A config folder in a test's tmp_path, rewritten by each test step."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.store_url = f"sqlite:///{root.parent}/cli-store.db"
        self.set_project()

    def set_project(self, extra: str = "", store: str | None = None) -> None:
        """Write hqsync.yaml with extra instance settings (YAML at instance level)."""
        if store is not None:
            self.store_url = store
        lines = textwrap.dedent(extra).strip().splitlines()
        indented = "\n    ".join(lines)
        text = textwrap.dedent(PROJECT).format(store=self.store_url, extra=indented)
        (self.root / "hqsync.yaml").write_text(text)

    def write(self, name: str, text: str) -> None:
        """Write one resource file."""
        (self.root / name).write_text(textwrap.dedent(text))

    def remove(self, name: str) -> None:
        """Delete one resource file."""
        (self.root / name).unlink()

    def load(self, environ: Mapping[str, str] | None = None) -> LoadedConfig:
        """Load the folder with ``environ`` as the whole environment."""
        return load_config(self.root, environ=dict(environ or {}))


PlanAndApply = Callable[..., tuple[Plan, ApplyResult]]


def plan_for(config: LoadedConfig, store: Store) -> Plan:
    """Make a plan of ``config`` against ``store``."""
    return make_plan(config, store, instance_name=config.instance_name)


def converge(config: LoadedConfig, store: Store, *, force: bool = False) -> ApplyResult:
    """Plan and apply ``config``; return what apply did."""
    return apply_plan(store, plan_for(config, store), config.instance, force=force)


SERVICES = """
kind: ExternalService
name: intake
url: https://hooks.example.invalid/intake
auth: {type: header, key: {from_env: INTAKE_KEY}}
---
kind: ExternalService
name: crm
url: {from_env: CRM_URL}
auth:
  type: oauth2
  token_url: https://login.example.invalid/token
  client_id: crm-client
  client_secret: {from_env: CRM_SECRET}
"""

SITE = """
kind: Site
name: litigation
title: Litigation hub
isheets:
  - name: matters
    columns:
      - {name: matter_id, title: Matter ID}
      - {name: status, type: choice, choices: [Open, Closed]}
      - {name: code}
folders: [/Contracts, /Pleadings]
"""

RULES = """
kind: Rule
name: closed-matter
site: litigation
trigger: {type: isheet_item_updated, isheet: matters}
conditions:
  - {column: status, operator: changed_to, value: Closed}
  - {column: code, operator: equals, value: "00123"}
actions:
  - {type: send_to_external_service, service: crm, columns: [matter_id, status]}
  - {type: internal, name: send_alert, params: {to: [team]}}
---
kind: Rule
name: new-matter
site: litigation
trigger: {type: isheet_item_added, isheet: matters}
actions:
  - {type: send_to_external_service, service: intake}
"""

ENVIRON = {
    "INTAKE_KEY": "intake-key-value",
    "CRM_URL": "https://crm.example.invalid/notify?sig=crm-signature",
    "CRM_SECRET": "crm-client-secret",
}

"""A canary secret never appears in any output, file, log or error message."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote, quote_plus

from .helpers import ConfigDir
from .test_cli import run

KEY_CANARY = "Kc4n4ry+key/7f3a=Q"
SIG_CANARY = "sigCANARY9b1e44d0"
USER_CANARY = "pwCANARY51c2"
SECRET_CANARY = "secretCANARY0a7d"

SERVICES = """
kind: ExternalService
name: flow
url: {from_env: FLOW_URL}
auth: {type: header, key: {from_env: FLOW_KEY}}
---
kind: ExternalService
name: crm
url: https://crm.example.invalid/notify
auth:
  type: oauth2
  token_url: https://login.example.invalid/token
  client_id: {from_env: CRM_ID}
  client_secret: {from_env: CRM_SECRET}
"""

CANARY_ENV = {
    "FLOW_URL": f"https://user:{USER_CANARY}@flow.example.invalid/run?sv=1&sig={SIG_CANARY}",
    "FLOW_KEY": KEY_CANARY,
    "CRM_ID": "crm-client",
    "CRM_SECRET": SECRET_CANARY,
}


def _forms(canary: str) -> list[str]:
    raw = canary.encode()
    return [
        canary,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        quote(canary, safe=""),
        quote_plus(canary),
    ]


def _assert_clean(text: str, where: str) -> None:
    for canary in (KEY_CANARY, SIG_CANARY, USER_CANARY, SECRET_CANARY):
        for form in _forms(canary):
            assert form not in text, f"{where} contains a form of a canary secret"


def test_canary_absent_from_every_output(config_dir: ConfigDir, tmp_path: Path) -> None:
    config_dir.write("services.yaml", SERVICES)
    saved = tmp_path / "plan.json"
    outputs: dict[str, str] = {}

    def record(name: str, *args: str, environ: dict[str, str] | None = None) -> None:
        result = run(
            config_dir, "-vv", *args, environ={**CANARY_ENV, **(environ or {})}
        )
        outputs[name] = result.stdout + result.stderr

    record("text plan", "plan")
    record("markdown plan", "plan", "--format", "markdown")
    record("json plan", "plan", "--format", "json")
    record("saved plan", "plan", "--out", str(saved))
    record("apply", "apply", str(saved))
    record("stale apply", "apply", str(saved))
    rotated = {"FLOW_KEY": KEY_CANARY + "2", "CRM_SECRET": SECRET_CANARY + "2"}
    record("changed secret plan", "plan", environ=rotated)
    record("changed secret json", "plan", "--format", "json", environ=rotated)
    record("changed secret markdown", "plan", "--format", "markdown", environ=rotated)
    record("list", "list", "services")
    record("export", "export", "--out", str(tmp_path / "exported"))
    bad_url = {
        "FLOW_URL": f"ftp://user:{USER_CANARY}@flow.example.invalid/?sig={SIG_CANARY}"
    }
    record("config error", "plan", environ=bad_url)

    assert "(sensitive value changed)" in outputs["changed secret plan"]
    assert "error" in outputs["config error"].lower()
    assert "stale" in outputs["stale apply"]
    assert "Apply complete" in outputs["apply"]
    assert "DEBUG" in outputs["apply"]
    for name, text in outputs.items():
        _assert_clean(text, name)
    _assert_clean(saved.read_text(), "saved plan file")
    for path in (tmp_path / "exported").rglob("*.yaml"):
        _assert_clean(path.read_text(), str(path))


def test_canary_absent_from_store_file(config_dir: ConfigDir, tmp_path: Path) -> None:
    config_dir.write("services.yaml", SERVICES)
    run(config_dir, "apply", "--auto-approve", environ=CANARY_ENV)
    database = Path(config_dir.store_url.removeprefix("sqlite:///"))
    content = database.read_bytes()
    wal = database.with_name(database.name + "-wal")
    if wal.exists():
        content += wal.read_bytes()
    for canary in (KEY_CANARY, SIG_CANARY, USER_CANARY, SECRET_CANARY):
        assert canary.encode() not in content

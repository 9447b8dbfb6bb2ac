"""The audit commands on a store filled by ``hqsync events push`` and ``hqsync run``.

A receiver on 127.0.0.1 returns 202 on ``/ok`` and 500 on ``/fail``. The
confirmation window is two seconds, so the failing delivery fails quickly.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hqsync.cli import main

from .helpers import CANARY

CONFIG = """
default_instance: local
instances:
  local:
    store: sqlite:///{root}/local.db
    allow_http: true
    allow_networks: [127.0.0.0/8]
    delivery: {{window_seconds: 2}}
"""

RESOURCES = """
kind: ExternalService
name: intake
url: http://127.0.0.1:{port}/ok
auth: {{type: header, key: {{from_env: AUDIT_E2E_KEY}}}}
---
kind: ExternalService
name: broken
url: {{from_env: AUDIT_E2E_BROKEN_URL}}
auth: {{type: header, key: {{from_env: AUDIT_E2E_KEY}}}}
---
kind: Site
name: litigation
isheets:
  - name: matters
    columns: [{{name: matter_id}}, {{name: status}}]
---
kind: Rule
name: new-matter
site: litigation
trigger: {{type: isheet_item_added, isheet: matters}}
actions:
  - {{type: send_to_external_service, service: intake, columns: [matter_id]}}
  - {{type: send_to_external_service, service: broken}}
  - {{type: internal, name: send_alert, params: {{to: [team]}}}}
"""


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = 202 if self.path.startswith("/ok") else 500
        self.send_response(status)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"status\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver_port() -> Iterator[int]:
    """Start the receiver on 127.0.0.1; return its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _hqsync(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["hqsync", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def filled(
    tmp_path: Path,
    receiver_port: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Apply the configuration, push one event and run until idle; return the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIT_E2E_KEY", CANARY)
    monkeypatch.setenv(
        "AUDIT_E2E_BROKEN_URL", f"http://127.0.0.1:{receiver_port}/fail?sig={CANARY}"
    )
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "hqsync.yaml").write_text(CONFIG.format(root=tmp_path))
    (configs / "resources.yaml").write_text(RESOURCES.format(port=receiver_port))
    event = {
        "id": "evt-1",
        "type": "isheet_item_added",
        "site": "litigation",
        "isheet": "matters",
        "item_id": 1042,
        "occurred_at": datetime.now(UTC).isoformat(),
        "values": {"matter_id": "M-1"},
    }
    (tmp_path / "events.jsonl").write_text(json.dumps(event) + "\n")
    for args in (
        ("apply", "--auto-approve"),
        ("events", "push", "events.jsonl"),
        ("run", "--until-idle"),
    ):
        code, out, err = _hqsync(capsys, monkeypatch, *args)
        assert code == 0, out + err
    return tmp_path


def _records(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, object]]:
    _, out, _ = _hqsync(capsys, monkeypatch, "audit", "list", "--format", "json")
    return {str(r["service"]): r for r in json.loads(out)["records"]}


def test_audit_after_runner_statuses(
    filled: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _records(capsys, monkeypatch)
    assert records["intake"]["status"] == "success"
    assert records["broken"]["status"] == "failed"
    assert records["None"]["action_type"] == "internal"


def test_audit_after_runner_show_failed(
    filled: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = _records(capsys, monkeypatch)["broken"]["id"]
    code, out, _ = _hqsync(capsys, monkeypatch, "audit", "show", str(failed))
    assert code == 0
    assert "HTTP 500" in out
    assert "hqsync://local/sites/litigation/isheets/matters/items/1042" in out
    assert CANARY not in out


def test_audit_after_runner_exports_clean(
    filled: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for export_format, extra in (
        ("csv", ()),
        ("csv", ("--attempts",)),
        ("jsonl", ()),
        ("json", ()),
    ):
        code, out, err = _hqsync(
            capsys,
            monkeypatch,
            "audit",
            "export",
            "--format",
            export_format,
            "--out",
            "-",
            *extra,
        )
        assert code == 0, err
        assert CANARY not in out
    _, out, _ = _hqsync(capsys, monkeypatch, "audit", "export", "--out", "-")
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert sorted(row["status"] for row in rows) == ["failed", "success", "success"]


def test_audit_after_runner_retry_delivers(
    filled: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = _records(capsys, monkeypatch)["broken"]["id"]
    code, out, err = _hqsync(capsys, monkeypatch, "audit", "retry", "--failed")
    assert code == 0, err
    assert f"record {failed} -> record" in out
    code, _, err = _hqsync(capsys, monkeypatch, "run", "--until-idle")
    assert code == 0, err
    _, out, _ = _hqsync(
        capsys, monkeypatch, "audit", "show", str(failed), "--format", "json"
    )
    [retry_id] = json.loads(out)["retried_as"]
    _, out, _ = _hqsync(
        capsys, monkeypatch, "audit", "show", str(retry_id), "--format", "json"
    )
    retried = json.loads(out)
    assert retried["retry_of"] == failed
    assert retried["status"] == "failed"
    assert len(retried["attempts"]) >= 1

"""Helpers for template tests: two instances with their own config folders, a CLI.

Instance ``a`` is where sites are built; instance ``b`` is where they are
imported, with other service names and a receiver on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

from hqsync.cli import main
from hqsync.store import LiveResource, open_store

CANARY_CRM_SECRET = "canary-crm-secret-5d1e7a"
CANARY_INTAKE_KEY = "canary-intake-key-93bc04"
CANARY_INTAKE_SIG = "canary-intake-sig-2f8a61"
B_INTAKE_KEY = "b-intake-key-0c4d"
CANARIES = (CANARY_CRM_SECRET, CANARY_INTAKE_KEY, CANARY_INTAKE_SIG)

A_SERVICES = """
kind: ExternalService
name: crm
url: https://crm.example.invalid/notify
auth:
  type: oauth2
  token_url: https://crm.example.invalid/token
  client_id: crm-client
  client_secret: {from_env: CRM_SECRET}
---
kind: ExternalService
name: intake
url: {from_env: INTAKE_URL}
auth: {type: header, key: {from_env: INTAKE_KEY}}
"""

# ``early`` is created before ``matters`` so that A's ids differ from B's.
A_SITES = """
kind: Site
name: early
isheets:
  - name: notes
    columns: [{name: note_id}]
---
kind: Site
name: matters
title: Matter work
isheets:
  - name: tasks
    columns:
      - {name: task_id, title: Task ID}
      - {name: state, type: choice, choices: [To do, Done]}
  - name: cases
    columns:
      - {name: case_id}
      - {name: status, type: choice, choices: [Open, Closed]}
      - {name: value, type: number}
folders: [/Drafts, /Contracts]
"""

A_RULES = """
kind: Rule
name: early-to-crm
site: early
trigger: {type: isheet_item_added, isheet: notes}
actions: [{type: send_to_external_service, service: crm}]
---
kind: Rule
name: closed-to-crm
site: matters
trigger: {type: isheet_item_updated, isheet: cases}
conditions: [{column: status, operator: changed_to, value: Closed}]
actions:
  - {type: send_to_external_service, service: crm, columns: [case_id, status]}
  - {type: internal, name: send_alert, params: {to: [partners]}}
---
kind: Rule
name: new-case-to-intake
site: matters
trigger: {type: isheet_item_added, isheet: cases}
actions:
  - {type: send_to_external_service, service: intake, columns: [case_id, value]}
---
kind: Rule
name: draft-to-intake
site: matters
trigger: {type: file_added, folder: /Drafts}
conditions: [{field: extension, operator: in, value: [docx, pdf]}]
actions: [{type: send_to_external_service, service: intake}]
---
kind: Rule
name: task-done-alert
site: matters
trigger: {type: isheet_item_updated, isheet: tasks}
conditions: [{column: state, operator: changed_to, value: Done}]
actions: [{type: internal, name: send_alert, params: {to: [owner]}}]
---
kind: Rule
name: paused-crm-sync
site: matters
enabled: false
trigger: {type: isheet_item_updated, isheet: tasks}
actions: [{type: send_to_external_service, service: crm}]
"""

EXTERNAL_RULES = [
    "closed-to-crm",
    "draft-to-intake",
    "new-case-to-intake",
    "paused-crm-sync",
]
"""The rules of site ``matters`` with an external action, by name."""

B_SERVICES = """
kind: ExternalService
name: crm-b
url: "http://127.0.0.1:{port}/crm-b"
auth:
  type: oauth2
  token_url: "http://127.0.0.1:{port}/token"
  client_id: crm-b-client
  client_secret: {{from_env: CRM_B_SECRET}}
---
kind: ExternalService
name: intake-b
url: {{from_env: INTAKE_B_URL}}
auth: {{type: header, key: {{from_env: INTAKE_B_KEY}}}}
"""

SERVICE_MAP = {"crm": "crm-b", "intake": "intake-b"}


@dataclass
class Result:
    """What one CLI invocation printed and returned."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Request:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A stdlib HTTP server on 127.0.0.1 that records requests and responds 202."""

    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> Receiver:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.append(Request(self.path, headers, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Instances:
    """Config folders ``configs-a`` and ``configs-b`` with a SQLite store each."""

    def __init__(self, root: Path, receiver_port: int) -> None:
        self.root = root
        self.a = root / "configs-a"
        self.b = root / "configs-b"
        self.environ = {
            "CRM_SECRET": CANARY_CRM_SECRET,
            "INTAKE_URL": f"https://hooks.example.invalid/intake?sig={CANARY_INTAKE_SIG}",
            "INTAKE_KEY": CANARY_INTAKE_KEY,
            "CRM_B_SECRET": "crm-b-secret",
            "INTAKE_B_URL": f"http://127.0.0.1:{receiver_port}/intake-b?sig=b-sig",
            "INTAKE_B_KEY": B_INTAKE_KEY,
        }
        self.write(self.a, "hqsync.yaml", self._project("a", ""))
        self.write(self.a, "services.yaml", A_SERVICES)
        self.write(self.a, "sites.yaml", A_SITES)
        self.write(self.a, "rules.yaml", A_RULES)
        extra = "allow_http: true\n    allow_networks: [127.0.0.0/8]"
        self.write(self.b, "hqsync.yaml", self._project("b", extra))
        self.write(self.b, "services.yaml", B_SERVICES.format(port=receiver_port))

    def _project(self, name: str, extra: str) -> str:
        store = f"sqlite:///{self.root}/{name}.db"
        return f"instances:\n  {name}:\n    store: {store}\n    {extra}\n" + (
            f"default_instance: {name}\n"
        )

    @staticmethod
    def write(folder: Path, name: str, text: str) -> Path:
        """Write one file (dedented) into a config folder."""
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def run(self, folder: Path, *args: str) -> Result:
        """Run ``hqsync --config-dir FOLDER ARGS`` in this process."""
        return run_cli(self.root, self.environ, "--config-dir", str(folder), *args)

    def live(self, name: str) -> list[LiveResource]:
        """Read instance ``name``'s live resources."""
        with open_store(f"sqlite:///{self.root}/{name}.db") as store:
            return store.read_resources()

    def files(self, folder: Path) -> dict[str, str]:
        """Map each file under ``folder`` to its text, to check nothing changed."""
        return {
            str(path.relative_to(folder)): path.read_text(encoding="utf-8")
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }


def run_cli(cwd: Path, environ: dict[str, str], *args: str) -> Result:
    """Run ``hqsync ARGS`` through ``main()`` with no terminal and ``environ`` only."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **environ}
    stdout, stderr = io.StringIO(), io.StringIO()
    root_handlers = logging.getLogger().handlers[:]
    code: int | str | None = 0
    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch.object(sys, "argv", ["hqsync", *args]),
        mock.patch.object(sys, "stdin", io.StringIO("")),
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    logging.getLogger().handlers[:] = root_handlers
    return Result(int(code or 0), stdout.getvalue(), stderr.getvalue())

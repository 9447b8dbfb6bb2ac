"""The quick start end to end: the README's first command, in a temporary folder.

It runs the real ``hqsync`` commands as processes against the sandbox receiver
on a free 127.0.0.1 port, twice, and checks what the sandbox received against
the audit export.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.conftest import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

# (service, operation, contentID) of every webhook the sample events fire.
EXPECTED_DELIVERIES = Counter(
    {
        ("salesforce", "ADD_ITEM", 1001): 1,
        ("salesforce", "EDIT_ITEM", 1001): 1,
        ("salesforce", "ACTIVITY_DOCUMENT_ADDED", 640): 1,
        ("salesforce", "EDIT_ITEM", 9): 1,
        ("power-automate", "ACTIVITY_DOCUMENT_ADDED", 501): 1,
        ("power-automate", "ACTIVITY_VERSION_UPLOADED", 310): 1,
        ("power-automate", "ADD_ITEM", 77): 1,
    }
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copy configs/ and examples/ to a fresh folder with a free sandbox port."""
    root = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copytree(REPO / "examples", root / "examples")
    (root / ".hqsync").mkdir()
    (root / ".hqsync" / "quickstart.json").write_text(json.dumps({"port": free_port()}))
    return root


def run_quickstart(workdir: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SF_", "PA_", "HQSYNC_SANDBOX_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "hqsync.cli.quickstart"],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def received(workdir: Path) -> list[dict[str, Any]]:
    lines = (workdir / ".hqsync" / "sandbox-deliveries.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def exported(workdir: Path) -> list[dict[str, str]]:
    with (workdir / ".hqsync" / "audit-export.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def first_run(workdir: Path) -> subprocess.CompletedProcess[str]:
    return run_quickstart(workdir)


@pytest.fixture(scope="module")
def first_received(
    workdir: Path, first_run: subprocess.CompletedProcess[str]
) -> list[dict[str, Any]]:
    return received(workdir)


def test_quickstart_exits_zero(first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    assert "Done: every webhook was delivered and confirmed." in first_run.stdout


def test_quickstart_sandbox_gets_expected_deliveries(
    first_received: list[dict[str, Any]],
) -> None:
    seen = Counter(
        (item["service"], item["body"]["operation"], item["body"]["contentID"])
        for item in first_received
    )
    assert seen == EXPECTED_DELIVERIES


def test_quickstart_deliveries_valid_and_authenticated(
    first_received: list[dict[str, Any]],
) -> None:
    for item in first_received:
        assert item["auth"] == "ok", item
        assert item["problems"] == [], item
        assert item["status"] in (201, 202), item
        assert not item["duplicate"], item
        assert item["body"]["workflowVersion"] == "V1"


def test_quickstart_audit_export_matches_sandbox(
    workdir: Path, first_received: list[dict[str, Any]]
) -> None:
    rows = exported(workdir)
    webhooks = [row for row in rows if row["action_type"] == "send_to_external_service"]
    assert len(rows) == 12
    assert {row["delivery_id"] for row in webhooks} == {
        item["delivery_id"] for item in first_received
    }
    assert {row["status"] for row in rows} == {"success"}


def test_quickstart_output_has_no_sandbox_secret(
    workdir: Path, first_run: subprocess.CompletedProcess[str]
) -> None:
    values = dotenv_values(REPO / "configs" / "sandbox.env")
    secrets = [values["SF_CLIENT_SECRET"], values["PA_HIGHQ_AUTH_KEY"], "sig=sandbox"]
    written = "".join(
        [
            first_run.stdout,
            first_run.stderr,
            (workdir / ".hqsync" / "audit-export.csv").read_text(),
        ]
    )
    for secret in secrets:
        assert secret and secret not in written


def test_quickstart_second_run_plans_no_changes(
    workdir: Path, first_run: subprocess.CompletedProcess[str]
) -> None:
    second = run_quickstart(workdir)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes." in second.stdout
    assert len(received(workdir)) == sum(EXPECTED_DELIVERIES.values())
    assert len(exported(workdir)) == 24

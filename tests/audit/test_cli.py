"""The ``hqsync audit`` commands end to end on a store opened by open_store."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hqsync.cli import main
from hqsync.store import open_store, schema

from .helpers import CANARY, AuditFactory


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditFactory]:
    """Open the default instance store in a fresh folder; return a factory on it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    store = open_store("sqlite:///.hqsync/local.db")
    yield AuditFactory(store.engine)
    store.close()


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> Result:
    monkeypatch.setattr(sys, "argv", ["hqsync", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def test_cli_list_table(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project.record(rule="closed-matter", attempts=2)
    result = run(capsys, monkeypatch, "audit", "list")
    assert result.exit_code == 0
    assert "litigation/closed-matter" in result.stdout
    assert "failed" in result.stdout


def test_cli_list_json_paging(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [project.record() for _ in range(3)]
    first = json.loads(
        run(
            capsys, monkeypatch, "audit", "list", "--limit", "2", "--format", "json"
        ).stdout
    )
    second = json.loads(
        run(
            capsys,
            monkeypatch,
            "audit",
            "list",
            "--limit",
            "2",
            "--format",
            "json",
            "--before",
            str(first["next_before"]),
        ).stdout
    )
    assert [r["id"] for r in first["records"] + second["records"]] == ids[::-1]
    assert second["next_before"] is None


def test_cli_list_bad_filter(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(capsys, monkeypatch, "audit", "list", "--since", "yesterday")
    assert result.exit_code == 1
    assert "invalid --since 'yesterday'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_show_detail(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_id = project.record(
        attempts=2,
        api_url=f"https://pa.example.invalid/run?sig={CANARY}",
        request_headers={"HighQ-Auth-Key": CANARY, "Content-Type": "application/json"},
    )
    result = run(capsys, monkeypatch, "audit", "show", str(record_id))
    assert result.exit_code == 0
    for heading in (
        "Rule action detail:",
        "Error message:",
        "API URL:",
        "Request headers:",
        "Request body:",
        "Attempts (2):",
    ):
        assert heading in result.stdout
    assert "HighQ-Auth-Key: REDACTED" in result.stdout
    assert "hqsync://local/sites/litigation/isheets/matters/items/" in result.stdout
    assert CANARY not in result.stdout


def test_cli_show_unknown_id(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(capsys, monkeypatch, "audit", "show", "777")
    assert result.exit_code == 1
    assert "audit record 777 not found" in result.stderr


def test_cli_export_csv_file(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project.record(status="success")
    wanted = project.record(status="failed")
    result = run(
        capsys,
        monkeypatch,
        "audit",
        "export",
        "--format",
        "csv",
        "--out",
        "audit.csv",
        "--status",
        "failed",
    )
    rows = list(csv.DictReader(io.StringIO((tmp_path / "audit.csv").read_text())))
    assert result.exit_code == 0
    assert [int(row["id"]) for row in rows] == [wanted]
    assert "Exported 1 record to audit.csv." in result.stderr


def test_cli_export_jsonl_stdout(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_id = project.record()
    result = run(
        capsys, monkeypatch, "audit", "export", "--format", "jsonl", "--out", "-"
    )
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [
        record_id
    ]


def test_cli_retry_by_id(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_id = project.record()
    result = run(capsys, monkeypatch, "audit", "retry", str(record_id))
    assert result.exit_code == 0
    assert f"record {record_id} -> record" in result.stdout


def test_cli_retry_failed_since(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    recent = project.record(created_at=now - timedelta(hours=1))
    project.record(created_at=now - timedelta(days=2))
    result = run(capsys, monkeypatch, "audit", "retry", "--failed", "--since", "24h")
    assert "Queued 1 redelivery:" in result.stdout
    assert f"record {recent} -> record" in result.stdout


def test_cli_retry_success_needs_force(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_id = project.record(status="success")
    result = run(capsys, monkeypatch, "audit", "retry", str(record_id))
    assert result.exit_code == 1
    assert "pass --force" in result.stderr


def test_cli_retry_filters_without_failed(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(capsys, monkeypatch, "audit", "retry", "--since", "24h")
    assert result.exit_code == 1
    assert "filters apply to --failed only" in result.stderr


def test_cli_prune_dry_run_then_yes(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = datetime.now(UTC) - timedelta(days=120)
    project.record(created_at=old, attempts=1)
    project.record(status="pending", created_at=old)
    dry = run(capsys, monkeypatch, "audit", "prune", "--older-than", "90d")
    assert "Would delete 1 records, 1 attempts and 1 events" in dry.stdout
    assert project.count(schema.audit_records) == 2
    done = run(capsys, monkeypatch, "audit", "prune", "--older-than", "90d", "--yes")
    assert "Deleted 1 records" in done.stdout
    assert "Kept 1 pending records" in done.stdout
    assert project.count(schema.audit_records) == 1


def test_cli_prune_bad_duration(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(capsys, monkeypatch, "audit", "prune", "--older-than", "ninety")
    assert result.exit_code == 1
    assert "invalid --older-than 'ninety'" in result.stderr


def test_cli_show_by_delivery_id(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_id = project.record()
    delivery_id = audit_delivery_id(project, record_id)
    result = run(capsys, monkeypatch, "audit", "show", delivery_id)
    assert result.exit_code == 0, result.stderr
    assert f"Audit record {record_id}" in result.stdout


def test_cli_show_unknown_delivery_id(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = "4f1c2d7e-0000-4000-8000-000000000000"
    result = run(capsys, monkeypatch, "audit", "show", missing)
    assert result.exit_code == 1
    assert f"no audit record has delivery id {missing}" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "show", "99999999999999999999999"),
        ("audit", "show", "9223372036854775808"),
        ("audit", "retry", "99999999999999999999999"),
        ("audit", "list", "--before", "99999999999999999999999"),
    ],
)
def test_cli_id_beyond_int64_not_found(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:
    project.record()
    result = run(capsys, monkeypatch, *args)
    assert result.exit_code == 1
    assert "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_list_page_beyond_int64(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(capsys, monkeypatch, "audit", "list", "--page", str(2**62))
    assert result.exit_code == 1
    assert "invalid --page" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("audit", "list", "--since", "99999999999d"), "--since"),
        (("audit", "list", "--until", "999999999999999999w"), "--until"),
        (("audit", "prune", "--older-than", "999999999999d"), "--older-than"),
        (("audit", "retry", "--failed", "--since", "999999999999d"), "--since"),
        (("audit", "export", "--out", "-", "--since", "36501d"), "--since"),
    ],
)
def test_cli_duration_beyond_100_years(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    option: str,
) -> None:
    result = run(capsys, monkeypatch, *args)
    assert result.exit_code == 1
    assert f"invalid {option}" in result.stderr
    assert "at most 100 years" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_since_year_one_with_offset(
    project: AuditFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    since = "0001-01-01T00:00:00+05:00"
    result = run(capsys, monkeypatch, "audit", "list", "--since", since)
    assert result.exit_code == 1
    assert "invalid --since" in result.stderr
    assert "Traceback" not in result.stderr


def audit_delivery_id(project: AuditFactory, record_id: int) -> str:
    with project.engine.connect() as connection:
        value = connection.execute(
            sa.select(schema.audit_records.c.delivery_id).where(
                schema.audit_records.c.id == record_id
            )
        ).scalar_one()
    assert isinstance(value, str)
    return value

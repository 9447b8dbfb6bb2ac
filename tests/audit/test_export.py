"""Streaming export: formats round-trip, secrets stay out, no partial files."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hqsync.audit import (
    ATTEMPT_COLUMNS,
    RECORD_COLUMNS,
    AuditFilter,
    export_records,
    export_to_file,
    get_record,
)
from hqsync.audit import export as export_module
from hqsync.audit.csv_records import iter_record_lines
from hqsync.errors import AuditError

from .helpers import CANARY, AuditFactory


def _export(factory: AuditFactory, export_format: str, **options: Any) -> str:
    stream = io.StringIO(newline="")
    options.setdefault("audit_filter", AuditFilter())
    export_records(
        factory.engine,
        stream,
        export_format=export_format,
        instance="local",
        **options,
    )
    return stream.getvalue()


def _csv_value(value: Any) -> str:
    # How the exporter writes one field: JSON for structures, "" for NULL.
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


JSON_COLUMNS = ("action_detail", "request_headers", "request_body")


def _parsed(row: dict[str, str]) -> dict[str, Any]:
    # JSON columns hold JSON text whose spacing is not part of the contract.
    return {
        column: json.loads(value) if column in JSON_COLUMNS and value else value
        for column, value in row.items()
    }


def _expected_csv_row(document: dict[str, Any]) -> dict[str, Any]:
    trigger = document["trigger_object"]
    flat = {
        **document,
        "trigger_kind": trigger.get("kind"),
        "trigger_site": trigger.get("site"),
        "trigger_isheet": trigger.get("isheet"),
        "trigger_item_id": trigger.get("item_id"),
        "trigger_file_id": trigger.get("file_id"),
    }
    return _parsed({column: _csv_value(flat[column]) for column in RECORD_COLUMNS})


@pytest.fixture
def records(factory: AuditFactory) -> list[int]:
    """Insert a varied set of records, including awkward text; return their ids."""
    return [
        factory.record(attempts=2),
        factory.record(status="success", attempts=1, rule='règle, "quoted"\nline'),
        factory.record(status="pending"),
        factory.record(action="internal", service=None, status="success"),
        factory.record(
            trigger_object={"kind": "file", "site": "litigation", "file_id": 88},
            error_message="timed out, retrying\r\nthen gave up",
        ),
    ]


def test_export_csv_parses_back_to_records(
    factory: AuditFactory, records: list[int]
) -> None:
    text = _export(factory, "csv")
    rows = [_parsed(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
    expected = [
        _expected_csv_row(
            get_record(factory.engine, record_id, instance="local").record
        )
        for record_id in records
    ]
    assert rows == expected


def test_export_csv_header_is_stable(factory: AuditFactory) -> None:
    text = _export(factory, "csv")
    assert next(csv.reader(io.StringIO(text))) == list(RECORD_COLUMNS)


def test_export_csv_times_are_utc_iso(
    factory: AuditFactory, records: list[int]
) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(factory, "csv"), newline="")))
    assert rows[0]["created_at"] == "2026-12-01T12:00:00.000000Z"
    assert rows[0]["finished_at"] == "2026-12-01T12:05:00.000000Z"


def test_export_csv_attempts_one_row_each(
    factory: AuditFactory, records: list[int]
) -> None:
    text = _export(factory, "csv", per_attempt=True)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == list(ATTEMPT_COLUMNS)
    # Two attempts, one attempt, then three records without attempts.
    assert [(row["record_id"], row["attempt_number"]) for row in rows] == [
        (str(records[0]), "1"),
        (str(records[0]), "2"),
        (str(records[1]), "1"),
        (str(records[2]), ""),
        (str(records[3]), ""),
        (str(records[4]), ""),
    ]
    assert rows[1]["attempt_response_body"] == "boom 2"
    assert rows[1]["attempt_started_at"] == "2026-12-01T12:00:02.000000Z"


def test_export_jsonl_round_trips(factory: AuditFactory, records: list[int]) -> None:
    lines = _export(factory, "jsonl").splitlines()
    for line, record_id in zip(lines, records, strict=True):
        detail = get_record(factory.engine, record_id, instance="local")
        assert json.loads(line) == {**detail.record, "attempts": detail.attempts}


def test_export_json_is_one_array(factory: AuditFactory, records: list[int]) -> None:
    documents = json.loads(_export(factory, "json"))
    assert [document["id"] for document in documents] == records


def test_export_json_empty_store(factory: AuditFactory) -> None:
    assert json.loads(_export(factory, "json")) == []


def test_export_batches_cover_every_record(factory: AuditFactory) -> None:
    ids = [factory.record(status="failed" if i % 3 else "success") for i in range(10)]
    text = _export(
        factory,
        "csv",
        batch_size=3,
        audit_filter=AuditFilter(statuses=("failed",)),
    )
    exported = [int(row["id"]) for row in csv.DictReader(io.StringIO(text, newline=""))]
    assert exported == [record_id for i, record_id in enumerate(ids) if i % 3]


@pytest.mark.parametrize(
    ("export_format", "per_attempt"),
    [("csv", False), ("csv", True), ("jsonl", False), ("json", False)],
)
def test_export_never_writes_canary(
    factory: AuditFactory, export_format: str, per_attempt: bool
) -> None:
    factory.record(
        attempts=1,
        api_url=f"https://u:{CANARY}@pa.example.invalid/run?sv=1.0&sig={CANARY}&code={CANARY}",
        request_headers={
            "Authorization": f"Bearer {CANARY}",
            "HighQ-Auth-Key": CANARY,
            "Cookie": f"session={CANARY}",
            "X-Custom-Token": CANARY,
        },
        error_message=f"failed to POST https://pa.example.invalid/run?token={CANARY}",
    )
    with factory.engine.begin() as connection:
        from hqsync.store import schema

        connection.execute(
            schema.attempts.update().values(
                location=f"https://other.example.invalid/?access_token={CANARY}",
                response_headers={"Set-Cookie": f"id={CANARY}"},
                error_message=f"redirect to https://{CANARY}:x@h.example.invalid/",
            )
        )
    text = _export(factory, export_format, per_attempt=per_attempt)
    assert "REDACTED" in text
    assert CANARY not in text


def test_export_interrupted_leaves_no_file(
    factory: AuditFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        factory.record()

    def failing_rows(*args: Any) -> Iterator[tuple[str, int]]:
        # One complete batch reaches the file before the writer fails.
        batches = iter_record_lines(*args)
        yield next(batches)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(export_module, "iter_record_lines", failing_rows)
    out = tmp_path / "out" / "audit.csv"
    out.parent.mkdir()
    with pytest.raises(RuntimeError, match="injected failure"):
        export_to_file(
            factory.engine,
            out,
            export_format="csv",
            audit_filter=AuditFilter(),
            instance="local",
            batch_size=2,
        )
    assert list(out.parent.iterdir()) == []


def test_export_ctrl_c_keeps_previous_file(
    factory: AuditFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.record()
    out = tmp_path / "exports" / "audit.jsonl"
    out.parent.mkdir()
    out.write_text("previous export\n")

    def interrupted(*args: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "record_document", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_to_file(
            factory.engine,
            out,
            export_format="jsonl",
            audit_filter=AuditFilter(),
            instance="local",
        )
    assert out.read_text() == "previous export\n"
    assert [path.name for path in out.parent.iterdir()] == ["audit.jsonl"]


def test_export_to_file_writes_complete_file(
    factory: AuditFactory, tmp_path: Path, records: list[int]
) -> None:
    out = tmp_path / "audit.csv"
    count = export_to_file(
        factory.engine,
        out,
        export_format="csv",
        audit_filter=AuditFilter(),
        instance="local",
    )
    assert count == len(records)
    assert out.read_bytes().decode("utf-8") == _export(factory, "csv")


def test_export_to_missing_folder_creates_it(
    factory: AuditFactory, tmp_path: Path, records: list[int]
) -> None:
    out = tmp_path / "missing" / "audit.csv"
    export_to_file(
        factory.engine,
        out,
        export_format="csv",
        audit_filter=AuditFilter(),
        instance="local",
    )
    assert out.read_bytes().decode("utf-8") == _export(factory, "csv")


def test_export_to_symlink_keeps_link(
    factory: AuditFactory, tmp_path: Path, records: list[int]
) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    export_to_file(
        factory.engine,
        link,
        export_format="csv",
        audit_filter=AuditFilter(),
        instance="local",
    )
    assert link.is_symlink()
    assert real.read_bytes().decode("utf-8") == _export(factory, "csv")


def test_export_to_fifo_keeps_fifo(
    factory: AuditFactory, tmp_path: Path, records: list[int]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.append(fifo.read_bytes()), daemon=True
    )
    reader.start()
    export_to_file(
        factory.engine,
        fifo,
        export_format="jsonl",
        audit_filter=AuditFilter(),
        instance="local",
    )
    reader.join(timeout=10)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received == [_export(factory, "jsonl").encode("utf-8")]


def test_export_attempts_rejected_for_json(factory: AuditFactory) -> None:
    with pytest.raises(AuditError, match="--attempts applies to CSV only"):
        _export(factory, "jsonl", per_attempt=True)


def test_export_unknown_format(factory: AuditFactory) -> None:
    with pytest.raises(AuditError, match="invalid export format 'xml'"):
        _export(factory, "xml")


def test_export_csv_other_stored_time_forms(factory: AuditFactory) -> None:
    record_id = factory.record()
    with factory.engine.begin() as connection:
        # Times written by raw SQL rather than SQLAlchemy, in other forms.
        connection.exec_driver_sql(
            "UPDATE audit_records SET created_at = '2026-12-01T11:00:00+01:00', "
            "finished_at = 'not a time' WHERE id = ?",
            (record_id,),
        )
    [row] = list(csv.DictReader(io.StringIO(_export(factory, "csv"), newline="")))
    assert row["created_at"] == "2026-12-01T10:00:00.000000Z"
    assert row["finished_at"] == "not a time"


def test_export_new_file_is_private(
    factory: AuditFactory, tmp_path: Path, records: list[int]
) -> None:
    out = tmp_path / "audit.csv"
    export_to_file(
        factory.engine,
        out,
        export_format="csv",
        audit_filter=AuditFilter(),
        instance="local",
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

"""The audit functions on PostgreSQL: filters, export, retry and prune."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import sqlalchemy as sa

from hqsync.audit import (
    AuditFilter,
    count_prunable,
    export_records,
    get_record,
    list_records,
    prune,
    retry_failed,
    retry_records,
)
from hqsync.store import schema

from .helpers import CANARY, NOW, AuditFactory


def test_postgres_filters_and_paging(postgres_engine: sa.Engine) -> None:
    factory = AuditFactory(postgres_engine)
    wanted = [
        factory.record(service="power-automate", created_at=NOW + timedelta(minutes=i))
        for i in range(3)
    ]
    factory.record(service="salesforce")
    factory.record(service="power-automate", status="success")
    audit_filter = AuditFilter.from_options(
        services=["power-automate"], statuses=["failed"], since="2026-12-01T11:00:00Z"
    )
    first = list_records(postgres_engine, audit_filter, limit=2)
    second = list_records(
        postgres_engine, audit_filter, limit=2, before=first.next_before
    )
    assert [s.id for s in first.records + second.records] == wanted[::-1]


def test_postgres_export_round_trips(postgres_engine: sa.Engine) -> None:
    factory = AuditFactory(postgres_engine)
    ids = [
        factory.record(
            attempts=2,
            request_headers={"Authorization": f"Bearer {CANARY}"},
            api_url=f"https://pa.example.invalid/run?sig={CANARY}",
        )
        for _ in range(5)
    ]
    for export_format in ("csv", "jsonl"):
        stream = io.StringIO(newline="")
        export_records(
            postgres_engine,
            stream,
            export_format=export_format,
            audit_filter=AuditFilter(),
            instance="prod",
            batch_size=2,
        )
        assert CANARY not in stream.getvalue()
    lines = stream.getvalue().splitlines()
    documents = [json.loads(line) for line in lines]
    expected = []
    for record_id in ids:
        detail = get_record(postgres_engine, record_id, instance="prod")
        expected.append({**detail.record, "attempts": detail.attempts})
    assert documents == expected


def test_postgres_csv_times_are_utc(postgres_engine: sa.Engine) -> None:
    AuditFactory(postgres_engine).record()
    # A session in another time zone must not shift exported times.
    new_york = sa.create_engine(
        postgres_engine.url, connect_args={"options": "-c timezone=America/New_York"}
    )
    stream = io.StringIO(newline="")
    try:
        export_records(
            new_york,
            stream,
            export_format="csv",
            audit_filter=AuditFilter(),
            instance="prod",
        )
    finally:
        new_york.dispose()
    [row] = list(csv.DictReader(io.StringIO(stream.getvalue(), newline="")))
    assert row["created_at"] == "2026-12-01T12:00:00.000000Z"


def test_postgres_retry_and_prune(postgres_engine: sa.Engine) -> None:
    factory = AuditFactory(postgres_engine)
    old = factory.record(created_at=NOW - timedelta(days=100), attempts=1)
    [queued] = retry_records(postgres_engine, [old], now=NOW)
    assert get_record(postgres_engine, old, instance="prod").retried_as == [
        queued.record_id
    ]
    dry = count_prunable(postgres_engine, timedelta(days=90), now=NOW)
    done = prune(postgres_engine, timedelta(days=90), now=NOW)
    assert (dry.records, dry.attempts) == (1, 1)
    assert (done.records, done.attempts) == (1, 1)
    # The event is kept: the pending redelivery still refers to it.
    assert done.events == 0
    assert factory.count(schema.audit_records) == 1


def test_postgres_retry_failed_once(postgres_engine: sa.Engine) -> None:
    factory = AuditFactory(postgres_engine)
    recent = factory.record(created_at=NOW - timedelta(hours=1))
    factory.record(created_at=NOW - timedelta(days=2))
    audit_filter = AuditFilter.from_options(since="24h", now=NOW)
    first = retry_failed(postgres_engine, audit_filter, now=NOW)
    second = retry_failed(postgres_engine, audit_filter, now=NOW)
    assert [item.original_id for item in first] == [recent]
    assert second == []

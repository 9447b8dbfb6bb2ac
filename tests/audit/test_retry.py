"""Redelivery of failed webhook deliveries as new linked pending records."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hqsync.audit import AuditFilter, get_record, retry_failed, retry_records
from hqsync.errors import AuditError
from hqsync.store import schema

from .helpers import NOW, AuditFactory

LATER = NOW + timedelta(days=1)


def _row(factory: AuditFactory, record_id: int) -> dict[str, Any]:
    with factory.engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(schema.audit_records).where(
                    schema.audit_records.c.id == record_id
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


def test_retry_records_links_new_record(factory: AuditFactory) -> None:
    original = factory.record(attempts=3)
    [queued] = retry_records(factory.engine, [original], now=LATER)
    new = _row(factory, queued.record_id)
    old = _row(factory, original)
    assert queued.original_id == original
    assert new["retry_of"] == original
    assert new["status"] == "pending"
    assert new["delivery_id"] == queued.delivery_id
    assert new["delivery_id"] != old["delivery_id"]
    assert new["attempt_count"] == 0
    assert new["next_attempt_at"].replace(tzinfo=UTC) == LATER
    assert new["window_closes_at"].replace(tzinfo=UTC) == LATER + timedelta(hours=1)
    assert new["created_at"].replace(tzinfo=UTC) == LATER
    assert new["finished_at"] is None
    assert new["error_message"] is None
    for column in (
        "event_pk",
        "api_url",
        "request_headers",
        "request_body",
        "rule_name",
        "site_name",
        "service_id",
        "trigger_object",
    ):
        assert new[column] == old[column], column


def test_retry_records_keeps_original(factory: AuditFactory) -> None:
    original = factory.record(attempts=2)
    before = _row(factory, original)
    retry_records(factory.engine, [original], now=LATER)
    assert _row(factory, original) == before


def test_retry_records_shown_as_retried(factory: AuditFactory) -> None:
    original = factory.record()
    [queued] = retry_records(factory.engine, [original], now=LATER)
    detail = get_record(factory.engine, original, instance="local")
    assert detail.retried_as == [queued.record_id]


def test_retry_records_success_needs_force(factory: AuditFactory) -> None:
    record_id = factory.record(status="success")
    with pytest.raises(AuditError, match="succeeded; pass --force"):
        retry_records(factory.engine, [record_id])
    [queued] = retry_records(factory.engine, [record_id], force=True)
    assert queued.original_id == record_id


def test_retry_records_rejects_pending(factory: AuditFactory) -> None:
    record_id = factory.record(status="pending")
    with pytest.raises(AuditError, match="still pending"):
        retry_records(factory.engine, [record_id], force=True)


def test_retry_records_rejects_internal(factory: AuditFactory) -> None:
    record_id = factory.record(action="internal", service=None, status="success")
    with pytest.raises(AuditError, match="internal action"):
        retry_records(factory.engine, [record_id], force=True)


def test_retry_records_unknown_id(factory: AuditFactory) -> None:
    record_id = factory.record()
    with pytest.raises(AuditError, match="audit record not found: 404, 405"):
        retry_records(factory.engine, [record_id, 404, 405])


def test_retry_records_all_or_none(factory: AuditFactory) -> None:
    failed = factory.record()
    pending = factory.record(status="pending")
    total = factory.count(schema.audit_records)
    with pytest.raises(AuditError, match=f"audit record {pending} is still pending"):
        retry_records(factory.engine, [failed, pending])
    assert factory.count(schema.audit_records) == total


def test_retry_records_already_retried(factory: AuditFactory) -> None:
    original = factory.record()
    [first] = retry_records(factory.engine, [original])
    with pytest.raises(AuditError, match=f"already retried as {first.record_id}"):
        retry_records(factory.engine, [original])
    [second] = retry_records(factory.engine, [original], force=True)
    assert second.record_id != first.record_id


def test_retry_records_duplicate_ids_once(factory: AuditFactory) -> None:
    original = factory.record()
    queued = retry_records(factory.engine, [original, original])
    assert len(queued) == 1


def test_retry_failed_since(factory: AuditFactory) -> None:
    recent = factory.record(created_at=NOW - timedelta(hours=2))
    factory.record(created_at=NOW - timedelta(days=3))
    factory.record(status="success", created_at=NOW - timedelta(hours=1))
    factory.record(status="pending", created_at=NOW - timedelta(hours=1))
    factory.record(action="internal", service=None, created_at=NOW - timedelta(hours=1))
    audit_filter = AuditFilter.from_options(since="24h", now=NOW)
    queued = retry_failed(factory.engine, audit_filter, now=NOW)
    assert [item.original_id for item in queued] == [recent]


def test_retry_failed_twice_queues_once(factory: AuditFactory) -> None:
    factory.record()
    factory.record()
    first = retry_failed(factory.engine, AuditFilter(), now=NOW)
    second = retry_failed(factory.engine, AuditFilter(), now=NOW)
    assert len(first) == 2
    assert second == []


def test_retry_failed_in_batches(
    factory: AuditFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hqsync.audit import retry as retry_module

    monkeypatch.setattr(retry_module, "_BATCH_SIZE", 2)
    ids = [factory.record() for _ in range(5)]
    queued = retry_failed(factory.engine, AuditFilter(), now=NOW)
    assert [item.original_id for item in queued] == ids


def test_retry_failed_filters_by_service(factory: AuditFactory) -> None:
    factory.record(service="salesforce")
    wanted = factory.record(service="power-automate")
    queued = retry_failed(
        factory.engine, AuditFilter(services=("power-automate",)), now=NOW
    )
    assert [item.original_id for item in queued] == [wanted]

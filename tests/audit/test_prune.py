"""Pruning old finished records, their attempts and emptied events."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from hqsync.audit import count_prunable, prune
from hqsync.store import schema

from .helpers import NOW, AuditFactory

OLD = NOW - timedelta(days=100)
AGE = timedelta(days=90)


def _ids(factory: AuditFactory, table: sa.Table) -> set[int]:
    with factory.engine.connect() as connection:
        return set(connection.execute(sa.select(table.c.id)).scalars())


def test_prune_spares_newer_and_pending(factory: AuditFactory) -> None:
    old_failed = factory.record(created_at=OLD, attempts=2)
    old_success = factory.record(status="success", created_at=OLD, attempts=1)
    old_pending = factory.record(status="pending", created_at=OLD)
    newer = factory.record(created_at=NOW - timedelta(days=10), attempts=1)
    count = prune(factory.engine, AGE, now=NOW)
    assert _ids(factory, schema.audit_records) == {old_pending, newer}
    assert count.records == 2
    assert count.attempts == 3
    assert count.pending_spared == 1
    assert old_failed not in _ids(factory, schema.audit_records)
    assert old_success not in _ids(factory, schema.audit_records)


def test_prune_deletes_attempts_of_deleted_records(factory: AuditFactory) -> None:
    factory.record(created_at=OLD, attempts=2)
    kept = factory.record(created_at=NOW, attempts=3)
    prune(factory.engine, AGE, now=NOW)
    with factory.engine.connect() as connection:
        owners = set(
            connection.execute(sa.select(schema.attempts.c.record_id)).scalars()
        )
    assert owners == {kept}
    assert factory.count(schema.attempts) == 3


def test_prune_events_only_when_emptied(factory: AuditFactory) -> None:
    shared_event = factory.event(at=OLD)
    factory.record(created_at=OLD, event_pk=shared_event)
    factory.record(status="pending", created_at=OLD, event_pk=shared_event)
    emptied_event = factory.event(at=OLD)
    factory.record(created_at=OLD, event_pk=emptied_event)
    recent_event = factory.event(at=NOW)
    count = prune(factory.engine, AGE, now=NOW)
    assert _ids(factory, schema.events) == {shared_event, recent_event}
    assert count.events == 1


def test_prune_clears_retry_links(factory: AuditFactory) -> None:
    original = factory.record(created_at=OLD)
    retry = factory.record(status="pending", created_at=NOW, retry_of=original)
    prune(factory.engine, AGE, now=NOW)
    with factory.engine.connect() as connection:
        link = connection.execute(
            sa.select(schema.audit_records.c.retry_of).where(
                schema.audit_records.c.id == retry
            )
        ).scalar_one()
    assert link is None


def test_prune_count_matches_and_deletes_nothing(factory: AuditFactory) -> None:
    for _ in range(3):
        factory.record(created_at=OLD, attempts=2)
    factory.record(status="pending", created_at=OLD)
    factory.record(created_at=NOW)
    before = factory.count(schema.audit_records)
    dry = count_prunable(factory.engine, AGE, now=NOW)
    assert factory.count(schema.audit_records) == before
    done = prune(factory.engine, AGE, now=NOW, batch_size=2)
    assert (dry.records, dry.attempts, dry.events) == (3, 6, 3)
    assert (done.records, done.attempts, done.events) == (3, 6, 3)
    assert dry.cutoff == NOW - AGE


def test_prune_in_small_batches(factory: AuditFactory) -> None:
    for _ in range(7):
        factory.record(created_at=OLD, attempts=1)
    count = prune(factory.engine, AGE, now=NOW, batch_size=3)
    assert count.records == 7
    assert factory.count(schema.audit_records) == 0
    assert factory.count(schema.events) == 0

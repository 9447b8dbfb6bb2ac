"""Delete old finished audit records, their attempts and emptied events.

Pending records are never deleted, however old. Deletion runs in batches, one
transaction each, so a prune of millions of rows neither holds a long lock nor
loses finished batches when it is interrupted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hqsync.audit.filters import FINISHED_STATUSES
from hqsync.store.schema import attempts, audit_records, events

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class PruneCount:
    """Rows a prune deletes (or, in a dry run, would delete)."""

    cutoff: datetime
    records: int
    attempts: int
    events: int
    pending_spared: int  # pending records older than the cutoff, kept


def _prunable(cutoff: datetime) -> sa.ColumnElement[bool]:
    c = audit_records.c
    return sa.and_(c.created_at < cutoff, c.status.in_(FINISHED_STATUSES))


def _emptied_events(cutoff: datetime) -> sa.ColumnElement[bool]:
    # An event older than the cutoff whose every record is prunable (or that
    # has none): once those records go, nothing refers to it.
    c = audit_records.c
    kept = sa.exists().where(
        c.event_pk == events.c.id,
        sa.or_(c.created_at >= cutoff, c.status.not_in(FINISHED_STATUSES)),
    )
    return sa.and_(events.c.received_at < cutoff, ~kept)


def _count(connection: Connection, query: sa.Select[Any]) -> int:
    value = connection.execute(query).scalar_one()
    return int(value)


def count_prunable(
    engine: Engine, older_than: timedelta, *, now: datetime | None = None
) -> PruneCount:
    """Count what a prune with ``older_than`` would delete, deleting nothing."""
    cutoff = (now or datetime.now(UTC)).astimezone(UTC) - older_than
    c = audit_records.c
    with engine.connect() as connection:
        records = _count(
            connection,
            sa.select(sa.func.count())
            .select_from(audit_records)
            .where(_prunable(cutoff)),
        )
        attempt_count = _count(
            connection,
            sa.select(sa.func.count())
            .select_from(attempts.join(audit_records, attempts.c.record_id == c.id))
            .where(_prunable(cutoff)),
        )
        event_count = _count(
            connection,
            sa.select(sa.func.count())
            .select_from(events)
            .where(_emptied_events(cutoff)),
        )
        spared = _count(
            connection,
            sa.select(sa.func.count())
            .select_from(audit_records)
            .where(c.created_at < cutoff, c.status == "pending"),
        )
    return PruneCount(cutoff, records, attempt_count, event_count, spared)


def prune(
    engine: Engine,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> PruneCount:
    """Delete finished records created before now minus ``older_than``.

    Returns the counts of deleted rows.
    """
    cutoff = (now or datetime.now(UTC)).astimezone(UTC) - older_than
    c = audit_records.c
    records = attempt_total = event_total = 0

    # Records first, with their attempts; links from later redeliveries are
    # cleared explicitly because SQLite enforces foreign keys only if asked.
    while True:
        with engine.begin() as connection:
            ids = list(
                connection.execute(
                    sa.select(c.id)
                    .where(_prunable(cutoff))
                    .order_by(c.id)
                    .limit(batch_size)
                ).scalars()
            )
            if not ids:
                break
            attempt_total += connection.execute(
                attempts.delete().where(attempts.c.record_id.in_(ids))
            ).rowcount
            connection.execute(
                audit_records.update().where(c.retry_of.in_(ids)).values(retry_of=None)
            )
            records += connection.execute(
                audit_records.delete().where(c.id.in_(ids))
            ).rowcount
        logger.info("prune: %s records deleted so far", records)

    # Then events that no record refers to any more.
    while True:
        with engine.begin() as connection:
            event_ids = list(
                connection.execute(
                    sa.select(events.c.id)
                    .where(_emptied_events(cutoff))
                    .limit(batch_size)
                ).scalars()
            )
            if not event_ids:
                break
            event_total += connection.execute(
                events.delete().where(events.c.id.in_(event_ids))
            ).rowcount

    with engine.connect() as connection:
        spared = _count(
            connection,
            sa.select(sa.func.count())
            .select_from(audit_records)
            .where(c.created_at < cutoff, c.status == "pending"),
        )
    logger.info(
        "prune: %s records, %s attempts, %s events deleted; cutoff %s",
        records,
        attempt_total,
        event_total,
        cutoff,
    )
    return PruneCount(cutoff, records, attempt_total, event_total, spared)

"""Redeliver webhook deliveries as new pending records linked to the originals.

A redelivery copies the original's rule, triggering object, API URL, request
headers and body. It gets a new delivery id and a fresh confirmation window
from now (one hour unless the caller passes the instance's window), and it
points back to the original through ``retry_of``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from hqsync.audit.filters import AuditFilter
from hqsync.audit.records import is_record_id
from hqsync.errors import AuditError
from hqsync.store.schema import audit_records

logger = logging.getLogger(__name__)

CONFIRMATION_WINDOW = timedelta(hours=1)
_BATCH_SIZE = 500

# Columns a redelivery copies unchanged from its original.
_COPIED_COLUMNS = (
    "event_pk",
    "rule_id",
    "rule_name",
    "site_name",
    "action_index",
    "action_type",
    "action_detail",
    "trigger_object",
    "service_id",
    "service_name",
    "api_url",
    "request_headers",
    "request_body",
)


@dataclass(frozen=True)
class Redelivery:
    """One queued redelivery: the original record and the new pending one."""

    original_id: int
    record_id: int
    delivery_id: str
    rule: str
    site: str
    service: str | None


def _retried_ids(connection: Connection, ids: Sequence[int]) -> dict[int, int]:
    # Maps each original id to the newest record that redelivers it.
    rows = connection.execute(
        sa.select(audit_records.c.retry_of, sa.func.max(audit_records.c.id))
        .where(audit_records.c.retry_of.in_(ids))
        .group_by(audit_records.c.retry_of)
    ).all()
    return {original: newest for original, newest in rows}


def _check(row: RowMapping, force: bool, retried_as: int | None) -> None:
    record_id = row["id"]
    if row["action_type"] != "send_to_external_service":
        raise AuditError(
            f"audit record {record_id} is an internal action, not a webhook delivery"
        )
    if row["status"] == "pending":
        raise AuditError(
            f"audit record {record_id} is still pending; the runner is delivering it"
        )
    if row["status"] == "success" and not force:
        raise AuditError(
            f"audit record {record_id} succeeded; pass --force to deliver it again"
        )
    if retried_as is not None and not force:
        raise AuditError(
            f"audit record {record_id} was already retried as {retried_as}; retry "
            f"{retried_as} instead, or pass --force"
        )


def _insert(
    connection: Connection,
    rows: Sequence[RowMapping],
    now: datetime,
    window: timedelta,
) -> list[Redelivery]:
    queued: list[Redelivery] = []
    for row in rows:
        values: dict[str, Any] = {name: row[name] for name in _COPIED_COLUMNS}
        delivery_id = str(uuid.uuid4())
        values.update(
            delivery_id=delivery_id,
            status="pending",
            attempt_count=0,
            next_attempt_at=now,
            window_closes_at=now + window,
            retry_of=row["id"],
            created_at=now,
        )
        new_id = connection.execute(
            audit_records.insert().values(values).returning(audit_records.c.id)
        ).scalar_one()
        queued.append(
            Redelivery(
                row["id"],
                new_id,
                delivery_id,
                row["rule_name"],
                row["site_name"],
                row["service_name"],
            )
        )
        logger.info(
            "retry: record %s queued as %s (delivery %s)",
            row["id"],
            new_id,
            delivery_id,
        )
    return queued


def retry_records(
    engine: Engine,
    record_ids: Sequence[int],
    *,
    force: bool = False,
    window: timedelta = CONFIRMATION_WINDOW,
    now: datetime | None = None,
) -> list[Redelivery]:
    """Queue redeliveries of the given records: all of them, or none on any bad id."""
    if not record_ids:
        raise AuditError("no audit record ids given; name ids or pass --failed")
    current = (now or datetime.now(UTC)).astimezone(UTC)
    unique_ids = list(dict.fromkeys(record_ids))
    # An id outside the stored range cannot be bound to the query; it is missing.
    queried = [record_id for record_id in unique_ids if is_record_id(record_id)]
    with engine.begin() as connection:
        rows = (
            connection.execute(
                sa.select(audit_records)
                .where(audit_records.c.id.in_(queried))
                .with_for_update()
            )
            .mappings()
            .all()
        )
        by_id = {row["id"]: row for row in rows}
        missing = [str(record_id) for record_id in unique_ids if record_id not in by_id]
        if missing:
            raise AuditError(f"audit record not found: {', '.join(missing)}")
        retried = _retried_ids(connection, unique_ids)
        for record_id in unique_ids:
            _check(by_id[record_id], force, retried.get(record_id))
        return _insert(
            connection, [by_id[record_id] for record_id in unique_ids], current, window
        )


def retry_failed(
    engine: Engine,
    audit_filter: AuditFilter,
    *,
    window: timedelta = CONFIRMATION_WINDOW,
    now: datetime | None = None,
) -> list[Redelivery]:
    """Queue redeliveries of failed webhook deliveries matching the filter.

    A failed record that already has a redelivery is skipped, so running the
    same command twice does not deliver twice.
    """
    current = (now or datetime.now(UTC)).astimezone(UTC)
    c = audit_records.c
    retried = audit_records.alias("retried")
    query = (
        sa.select(audit_records)
        .where(
            c.status == "failed",
            c.action_type == "send_to_external_service",
            *audit_filter.conditions(),
            ~sa.exists().where(retried.c.retry_of == c.id),
        )
        .order_by(c.id)
        .limit(_BATCH_SIZE)
    )
    queued: list[Redelivery] = []
    with engine.begin() as connection:
        # Each pass inserts redeliveries, which take the batch out of the query.
        while True:
            rows = connection.execute(query.with_for_update()).mappings().all()
            if not rows:
                return queued
            queued.extend(_insert(connection, rows, current, window))

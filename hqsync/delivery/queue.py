"""The delivery queue in the store: claim with a lease, renew, record, release.

A delivery is a pending audit record whose ``next_attempt_at`` has come. A
runner claims it by writing its id into ``lease_owner`` and a deadline into
``lease_expires_at``, renews that lease while the request is in flight, and
clears it when it records the attempt. A runner that dies stops renewing,
so once the lease expires any runner claims the delivery again, with the same
``delivery_id``: delivery is at least once.

On PostgreSQL candidates are locked with ``FOR UPDATE SKIP LOCKED``, so
concurrent runners never take each other's rows or wait for them. On SQLite the
claim runs in a ``BEGIN IMMEDIATE`` transaction, which holds the database's
single write lock, so claims are serialised.

Per-service limits count every unexpired lease in the store, from any
runner, so they hold across processes. On PostgreSQL two claims could each
count the leases before the other commits and together overshoot. A claim
therefore first takes a transaction-level advisory lock per service and
counts that service's leases after it. Claims for one service are
serialised; claims for different services are not. A claim waits, in key
order, for the locks of the services in its first batch of candidates. For
services it meets later it only tries the lock and leaves a service whose
lock is taken to the other runner, so claims never deadlock. A service at
its limit does not keep others' deliveries waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hqsync.store import Store
from hqsync.store.schema import attempts, audit_records

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A delivery this runner holds a lease on."""

    record_id: int
    delivery_id: str
    service_id: int | None
    service_name: str
    rule_name: str
    site_name: str
    request_body: dict[str, Any]
    attempt_count: int
    window_closes_at: datetime


@dataclass(frozen=True)
class AttemptRecord:
    """One finished attempt and the delivery's state after it."""

    claim: Claim
    started_at: datetime
    duration_ms: float
    outcome: str  # success | retry | failed
    status: str  # the delivery's status after it: pending | success | failed
    next_attempt_at: datetime | None
    http_status: int | None
    error_class: str | None
    error_message: str | None
    location: str | None
    response_headers: dict[str, str] | None
    response_body: str | None
    summary: str | None  # the record's error message, None on success


def as_utc(value: datetime) -> datetime:
    """Return an aware UTC datetime; SQLite returns stored times without a zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        audit_records.c.status == "pending",
        audit_records.c.next_attempt_at <= now,
        sa.or_(
            audit_records.c.lease_expires_at.is_(None),
            audit_records.c.lease_expires_at < now,
        ),
    )


def claim_due(
    store: Store,
    *,
    runner_id: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    service_limits: Mapping[int, int],
    default_service_limit: int,
    settled: Collection[int] = (),
) -> list[Claim]:
    """Lease up to ``limit`` due deliveries, within every service's limit.

    ``settled`` names this runner's leased records whose request has finished
    but whose attempt is not written yet: they hold no connection, so they do
    not count against the service's limit.
    """
    if limit <= 0 or not _any_claimable(store, now):
        return []
    with store.begin() as connection:
        ids = _select_within_limits(
            connection,
            store.dialect,
            now,
            limit,
            lambda service_id: service_limits.get(
                service_id or -1, default_service_limit
            ),
            settled,
        )
        if not ids:
            return []
        expires = now + timedelta(seconds=lease_seconds)
        rows = connection.execute(
            sa.update(audit_records)
            .where(audit_records.c.id.in_(ids))
            .values(lease_owner=runner_id, lease_expires_at=expires)
            .returning(*_CLAIM_COLUMNS)
        ).all()
    claims = [_to_claim(row._mapping) for row in rows]
    claims.sort(key=lambda claim: claim.record_id)
    return claims


def _any_claimable(store: Store, now: datetime) -> bool:
    # A read needs no write lock (SQLite runs in WAL mode), so an idle runner
    # polling often does not hold up ``events push`` or other runners.
    with store.engine.connect() as connection:
        found = connection.execute(
            sa.select(audit_records.c.id).where(_claimable(now)).limit(1)
        ).first()
    return found is not None


def _leased_per_service(
    connection: sa.Connection,
    now: datetime,
    services: Collection[int | None],
    settled: Collection[int],
) -> dict[int | None, int]:
    # A leased delivery was due when claimed and keeps its next_attempt_at, so
    # the due range of the (status, next_attempt_at) index holds every lease.
    ids = [service_id for service_id in services if service_id is not None]
    of_services: sa.ColumnElement[bool] = audit_records.c.service_id.in_(ids)
    if None in services:
        of_services = sa.or_(of_services, audit_records.c.service_id.is_(None))
    query = (
        sa.select(audit_records.c.service_id, sa.func.count())
        .where(
            audit_records.c.status == "pending",
            audit_records.c.next_attempt_at <= now,
            audit_records.c.lease_expires_at >= now,
            of_services,
        )
        .group_by(audit_records.c.service_id)
    )
    if settled:
        # Leaving out settled records by id, not subtracting a count, stays
        # right when their attempt is written while this claim runs.
        query = query.where(audit_records.c.id.not_in(list(settled)))
    rows = connection.execute(query).all()
    return {service_id: int(count) for service_id, count in rows}


SERVICE_LOCK_CLASS = 0x68717379  # "hqsy": the first key of per-service claim locks


def _lock_services(
    connection: sa.Connection, services: Collection[int | None], *, wait: bool
) -> set[int | None]:
    """Take a transaction-level advisory lock per service; return those taken.

    With ``wait`` it waits for each lock in ascending key order, otherwise it
    only tries them. A claim waits only for the services of its first batch
    of candidates, before it holds any other service lock, so claims waiting
    in key order cannot deadlock.
    """
    # The two-key form keeps these locks apart from the apply lock's one
    # bigint key; a delivery whose service was deleted locks key 0.
    keys = {service_id or 0: service_id for service_id in services}
    if wait:
        # unnest() yields the sorted keys in array order, and the scan takes
        # each row's lock before it reads the next, so locks come in key order.
        connection.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(:lock_class, key) IS NULL "
                "FROM unnest(CAST(:keys AS integer[])) AS key"
            ),
            {"lock_class": SERVICE_LOCK_CLASS, "keys": sorted(keys)},
        ).all()
        return set(services)
    rows = connection.execute(
        sa.text(
            "SELECT key, pg_try_advisory_xact_lock(:lock_class, key) "
            "FROM unnest(CAST(:keys AS integer[])) AS key"
        ),
        {"lock_class": SERVICE_LOCK_CLASS, "keys": sorted(keys)},
    ).all()
    return {keys[int(key)] for key, taken in rows if taken}


def _select_within_limits(
    connection: sa.Connection,
    dialect: str,
    now: datetime,
    limit: int,
    service_limit: Callable[[int | None], int],
    settled: Collection[int],
) -> list[int]:
    # Take the oldest due deliveries. Once a service reaches its limit, query
    # again without it, so that service does not starve the others.
    free: dict[int | None, int] = {}
    chosen: list[int] = []
    excluded: set[int | None] = set()
    while len(chosen) < limit:
        wanted = limit - len(chosen)
        rows = _lock_candidates(connection, dialect, now, excluded, chosen, wanted)
        if not rows:
            break
        new = {service_id for _, service_id in rows if service_id not in free}
        if dialect == "postgresql" and new:
            first = not free and not excluded
            locked = _lock_services(connection, new, wait=first)
            excluded |= new - locked
            new = locked
        if new:
            # Counted after the lock, so every claim committed before it counts.
            leased = _leased_per_service(connection, now, new, settled)
            for service_id in new:
                free[service_id] = service_limit(service_id) - leased.get(service_id, 0)
        for record_id, service_id in rows:
            if service_id in excluded:
                continue
            if free[service_id] <= 0:
                excluded.add(service_id)
                continue
            free[service_id] -= 1
            chosen.append(record_id)
    return chosen


def _lock_candidates(
    connection: sa.Connection,
    dialect: str,
    now: datetime,
    excluded: set[int | None],
    chosen: list[int],
    count: int,
) -> list[tuple[int, int | None]]:
    query = (
        sa.select(audit_records.c.id, audit_records.c.service_id)
        .where(_claimable(now))
        .order_by(audit_records.c.next_attempt_at, audit_records.c.id)
        .limit(count)
    )
    ids = [service_id for service_id in excluded if service_id is not None]
    if ids:
        query = query.where(
            sa.or_(
                audit_records.c.service_id.is_(None),
                audit_records.c.service_id.not_in(ids),
            )
        )
    if None in excluded:
        query = query.where(audit_records.c.service_id.is_not(None))
    if chosen:
        query = query.where(audit_records.c.id.not_in(chosen))
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [(int(row.id), row.service_id) for row in connection.execute(query)]


_CLAIM_COLUMNS = (
    audit_records.c.id,
    audit_records.c.delivery_id,
    audit_records.c.service_id,
    audit_records.c.service_name,
    audit_records.c.rule_name,
    audit_records.c.site_name,
    audit_records.c.request_body,
    audit_records.c.attempt_count,
    audit_records.c.window_closes_at,
)


def _to_claim(row: sa.RowMapping) -> Claim:
    return Claim(
        record_id=int(row["id"]),
        delivery_id=str(row["delivery_id"]),
        service_id=row["service_id"],
        service_name=str(row["service_name"] or ""),
        rule_name=str(row["rule_name"]),
        site_name=str(row["site_name"]),
        request_body=dict(row["request_body"] or {}),
        attempt_count=int(row["attempt_count"]),
        window_closes_at=as_utc(row["window_closes_at"]),
    )


def renew_leases(
    store: Store,
    *,
    runner_id: str,
    record_ids: Sequence[int],
    now: datetime,
    lease_seconds: float,
) -> int:
    """Extend this runner's leases on the given records; return how many it holds."""
    if not record_ids:
        return 0
    with store.begin() as connection:
        result = connection.execute(
            sa.update(audit_records)
            .where(
                audit_records.c.id.in_(list(record_ids)),
                audit_records.c.lease_owner == runner_id,
                audit_records.c.status == "pending",
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
    return int(result.rowcount)


def release(store: Store, *, runner_id: str, record_ids: Sequence[int]) -> None:
    """Give up leases without an attempt, so any runner may claim them at once."""
    if not record_ids:
        return
    with store.begin() as connection:
        connection.execute(
            sa.update(audit_records)
            .where(
                audit_records.c.id.in_(list(record_ids)),
                audit_records.c.lease_owner == runner_id,
            )
            .values(lease_owner=None, lease_expires_at=None)
        )


def record_attempts(
    store: Store, *, runner_id: str, records: Sequence[AttemptRecord]
) -> list[int]:
    """Write attempts and update their deliveries in one transaction.

    Return the record ids whose lease another runner had taken over: their
    attempt is kept, but the delivery's state is left to the new holder.
    """
    if not records:
        return []
    ids = [record.claim.record_id for record in records]
    with store.begin() as connection:
        numbers, written = _earlier_attempts(connection, runner_id, ids)
        # A retry after a commit whose reply was lost finds its attempts
        # already written, with the delivery updated in the same transaction.
        records = [
            r
            for r in records
            if (r.claim.record_id, as_utc(r.started_at)) not in written
        ]
        ids = [record.claim.record_id for record in records]
        if not records:
            return []
        held = set(
            connection.execute(
                sa.select(audit_records.c.id).where(
                    audit_records.c.id.in_(ids),
                    audit_records.c.lease_owner == runner_id,
                    audit_records.c.status == "pending",
                )
            ).scalars()
        )
        connection.execute(
            sa.insert(attempts),
            [
                _attempt_row(runner_id, r, numbers.get(r.claim.record_id, 0))
                for r in records
            ],
        )
        updates = [_record_update(r) for r in records if r.claim.record_id in held]
        if updates:
            connection.execute(_UPDATE_RECORD, updates)
    return [record_id for record_id in ids if record_id not in held]


def _earlier_attempts(
    connection: sa.Connection, runner_id: str, ids: Sequence[int]
) -> tuple[dict[int, int], set[tuple[int, datetime]]]:
    """Return each record's highest attempt number and this runner's attempts."""
    numbers: dict[int, int] = {}
    written: set[tuple[int, datetime]] = set()
    rows = connection.execute(
        sa.select(
            attempts.c.record_id,
            attempts.c.number,
            attempts.c.started_at,
            attempts.c.runner,
        ).where(attempts.c.record_id.in_(ids))
    )
    for record_id, number, started_at, runner in rows:
        numbers[record_id] = max(numbers.get(record_id, 0), int(number))
        if runner == runner_id:
            written.add((record_id, as_utc(started_at)))
    return numbers, written


def _attempt_row(
    runner_id: str, record: AttemptRecord, previous: int
) -> dict[str, Any]:
    return {
        "record_id": record.claim.record_id,
        "number": previous + 1,
        "started_at": record.started_at,
        "duration_ms": record.duration_ms,
        "outcome": record.outcome,
        "http_status": record.http_status,
        "error_class": record.error_class,
        "error_message": record.error_message,
        "location": record.location,
        "response_headers": record.response_headers,
        "response_body": record.response_body,
        "runner": runner_id,
    }


_UPDATE_RECORD = (
    sa.update(audit_records)
    .where(audit_records.c.id == sa.bindparam("record_id"))
    .values(
        status=sa.bindparam("new_status"),
        attempt_count=audit_records.c.attempt_count + 1,
        next_attempt_at=sa.bindparam("new_next_attempt_at"),
        error_message=sa.bindparam("new_error_message"),
        finished_at=sa.bindparam("new_finished_at"),
        lease_owner=None,
        lease_expires_at=None,
    )
)


def _record_update(record: AttemptRecord) -> dict[str, Any]:
    finished = record.status != "pending"
    return {
        "record_id": record.claim.record_id,
        "new_status": record.status,
        "new_next_attempt_at": record.next_attempt_at,
        "new_error_message": record.summary,
        "new_finished_at": record.started_at if finished else None,
    }


def fail_without_attempt(
    store: Store, *, runner_id: str, claim: Claim, message: str, now: datetime
) -> None:
    """Mark a claimed delivery failed when no request can be made at all."""
    with store.begin() as connection:
        connection.execute(
            sa.update(audit_records)
            .where(
                audit_records.c.id == claim.record_id,
                audit_records.c.lease_owner == runner_id,
            )
            .values(
                status="failed",
                # A delivery that ran out of time keeps its last attempt's error.
                error_message=sa.func.coalesce(audit_records.c.error_message, message),
                next_attempt_at=None,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )


@dataclass(frozen=True)
class QueueStats:
    """How much work is due now and how long the oldest has waited."""

    due: int
    oldest_due_seconds: float


def queue_stats(store: Store, now: datetime) -> QueueStats:
    """Count pending deliveries that are due and the age of the oldest one."""
    with store.engine.connect() as connection:
        count, oldest = connection.execute(
            sa.select(
                sa.func.count(), sa.func.min(audit_records.c.next_attempt_at)
            ).where(
                audit_records.c.status == "pending",
                audit_records.c.next_attempt_at <= now,
            )
        ).one()
    age = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return QueueStats(due=int(count), oldest_due_seconds=max(0.0, age))


def next_due_at(store: Store) -> datetime | None:
    """Return when the earliest pending delivery is due, or None if none is."""
    with store.engine.connect() as connection:
        value = connection.execute(
            sa.select(sa.func.min(audit_records.c.next_attempt_at)).where(
                audit_records.c.status == "pending"
            )
        ).scalar_one()
    return as_utc(value) if value is not None else None

"""The instance lock that serialises applies, on SQLite and PostgreSQL.

On SQLite the lock is a row in ``locks`` with an expiry, so a crashed holder
blocks others only until ``expires_at``. On PostgreSQL a session-level
``pg_advisory_lock`` on a connection of its own is the lock, which the server
releases when that session ends, and the row only names the holder for the
message of a waiting process.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hqsync.errors import LockTimeout
from hqsync.store.engine import SQLITE_BEGIN_OPTION
from hqsync.store.schema import locks

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 900
"""How long a SQLite lock row counts after its holder stops without releasing it."""

# NOTE: the row is not renewed, so an apply running longer than the TTL can be
# joined by a second one. The second then waits on SQLite's own write lock and
# fails its serial check once the first commits, so it never applies on top.

_POLL_SECONDS = 0.2


def now_utc() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; SQLite returns naive datetimes."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@contextmanager
def sqlite_lock(
    engine: sa.Engine, name: str, holder: str, timeout_s: float
) -> Iterator[None]:
    """Hold the named lock row for the duration of the block."""
    deadline = time.monotonic() + timeout_s
    while not _try_insert_lock_row(engine, name, holder):
        if time.monotonic() >= deadline:
            raise _timeout(engine, name, timeout_s)
        time.sleep(_POLL_SECONDS)
    log.debug("acquired lock %s for %s", name, holder)
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.delete(locks).where(locks.c.name == name, locks.c.holder == holder)
            )
        log.debug("released lock %s", name)


def _try_insert_lock_row(engine: sa.Engine, name: str, holder: str) -> bool:
    now = now_utc()
    options = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}
    with (
        engine.connect().execution_options(**options) as connection,
        connection.begin(),
    ):
        connection.execute(
            sa.delete(locks).where(locks.c.name == name, locks.c.expires_at < now)
        )
        try:
            with connection.begin_nested():
                connection.execute(
                    sa.insert(locks).values(
                        name=name,
                        holder=holder,
                        acquired_at=now,
                        expires_at=now + timedelta(seconds=LOCK_TTL_SECONDS),
                    )
                )
        except IntegrityError:
            return False
    return True


@contextmanager
def postgres_lock(
    engine: sa.Engine, name: str, holder: str, timeout_s: float
) -> Iterator[None]:
    """Hold a session-level advisory lock (and its row) for the block."""
    key = advisory_key(name)
    deadline = time.monotonic() + timeout_s
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as session:
        while not session.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
        ).scalar_one():
            if time.monotonic() >= deadline:
                raise _timeout(engine, name, timeout_s)
            time.sleep(_POLL_SECONDS)
        try:
            _write_holder_row(session, name, holder)
            log.debug("acquired advisory lock %s (%s) for %s", name, key, holder)
            yield
        finally:
            session.execute(
                sa.delete(locks).where(locks.c.name == name, locks.c.holder == holder)
            )
            session.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            log.debug("released advisory lock %s", name)


def advisory_key(name: str) -> int:
    """Map a lock name to a signed 64-bit advisory lock key."""
    digest = hashlib.sha256(f"hqsync lock {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _write_holder_row(session: sa.Connection, name: str, holder: str) -> None:
    # A row left by a holder whose session died is stale: the advisory lock,
    # not the row, decides who holds the lock, so overwrite it.
    now = now_utc()
    session.execute(sa.delete(locks).where(locks.c.name == name))
    session.execute(
        sa.insert(locks).values(
            name=name,
            holder=holder,
            acquired_at=now,
            expires_at=now + timedelta(seconds=LOCK_TTL_SECONDS),
        )
    )


def _timeout(engine: sa.Engine, name: str, timeout_s: float) -> LockTimeout:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(locks.c.holder, locks.c.acquired_at).where(locks.c.name == name)
        ).first()
    if row is None:
        holder = "another process (holder not recorded)"
    else:
        since = as_utc(row.acquired_at).isoformat(timespec="seconds")
        holder = f"{row.holder} since {since}"
    return LockTimeout(
        f"timed out after {timeout_s:g}s waiting for the {name} lock, held by "
        f"{holder}; retry later or raise --lock-timeout"
    )

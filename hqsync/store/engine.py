"""Engines for the instance store: store URLs, SQLite pragmas, PostgreSQL driver.

A store URL is ``sqlite:///relative/path.db`` (relative to the working
directory), ``sqlite:////absolute/path.db``, ``sqlite://`` (in memory, for
tests) or ``postgresql://user@host/db``. Bare ``postgresql://`` and
``postgres://`` URLs use the psycopg 3 driver.

On SQLite every connection runs with WAL journaling, foreign keys on and a
busy timeout, and SQLAlchemy (not the sqlite3 module) emits ``BEGIN``, so a
write transaction can ask for ``BEGIN IMMEDIATE`` and take the write lock
before it reads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from hqsync.errors import StoreError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite statement waits for another writer before failing."""

SQLITE_BEGIN_OPTION = "hqsync_sqlite_begin"
"""Execution option naming the SQLite BEGIN mode: DEFERRED or IMMEDIATE."""


def parse_store_url(url: str) -> URL:
    """Parse a store URL and map bare PostgreSQL schemes to psycopg 3."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid store URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported store URL scheme {parsed.drivername!r} in "
            f"{display_url(parsed)}; use sqlite:///PATH or postgresql://HOST/DB"
        )
    return parsed


def display_url(url: URL) -> str:
    """Render a URL with its password masked, for messages and logs."""
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """Return the database file of a SQLite URL, or None when it is in memory."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_store_engine(url: URL) -> Engine:
    """Create an engine for a parsed store URL, creating SQLite folders first."""
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    return sa.create_engine(url, pool_pre_ping=True, future=True)


def _create_sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    kwargs: dict[str, Any] = {}
    if path is None:
        # An in-memory database lives as long as its one connection.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of the store {path}: {exc.strerror}"
            ) from None
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level None stops the sqlite3 module from issuing its own BEGIN,
    # so the "begin" listener below controls when transactions start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")

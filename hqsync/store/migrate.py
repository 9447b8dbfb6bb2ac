"""Alembic migrations of the instance store, run without an ``alembic.ini``.

The revisions live in ``hqsync/store/migrations/versions``. An empty database
is migrated to the newest revision on first use. An older one is migrated only
by ``hqsync store migrate`` (:meth:`hqsync.store.Store.migrate`), so a routine
command never changes a shared schema without its operators. A database
whose revision this code does not know was migrated by a newer hqsync and
raises :class:`~hqsync.errors.SchemaVersionError`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from hqsync.errors import SchemaVersionError, StoreError
from hqsync.store.engine import SQLITE_BEGIN_OPTION

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Serialises concurrent first-use migrations of one PostgreSQL database; any
# fixed 64-bit number works as long as nothing else in the database uses it.
_MIGRATION_LOCK_KEY = 0x6871_7379_6E63_0001


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Build an Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision among this code's migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError("no store migrations are packaged with this hqsync")
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """Return the database's revision, or None when it has never been migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def check_revision(revision: str | None, display: str) -> None:
    """Raise SchemaVersionError when this code does not know ``revision``."""
    if revision is None:
        return
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise SchemaVersionError(
            f"the store at {display} has schema revision {revision!r}, which this "
            f"hqsync does not know (newest known: {head_revision()!r}); it was "
            "migrated by a newer hqsync, so upgrade hqsync to use it"
        )


def upgrade(engine: sa.Engine, display: str) -> tuple[str | None, str]:
    """Migrate the database to the newest revision; return (before, after)."""
    # IMMEDIATE takes SQLite's write lock up front, so a second process
    # migrating at the same time waits instead of failing half-way.
    options = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}
    with (
        engine.connect().execution_options(**options) as connection,
        connection.begin(),
    ):
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": _MIGRATION_LOCK_KEY},
            )
        before = current_revision(connection)
        check_revision(before, display)
        head = head_revision()
        if before != head:
            log.info("migrating store %s from %s to %s", display, before, head)
            command.upgrade(alembic_config(connection), "head")
    return before, head

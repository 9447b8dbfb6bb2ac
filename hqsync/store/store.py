"""The Store: one instance's live resources, serial, identity and lock.

Every apply bumps the ``serial`` in ``instance_meta``, so a saved plan can tell
whether the live state changed since it was made. Live resources are rows of
``resources``; :class:`LiveResource` is their read-only view, with secrets
still encrypted until :meth:`Store.decrypt_secrets` is called.
"""

from __future__ import annotations

import functools
import logging
import secrets as random_source
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hqsync.errors import StoreError
from hqsync.store import locks as store_locks
from hqsync.store import migrate
from hqsync.store.crypto import Cipher
from hqsync.store.engine import SQLITE_BEGIN_OPTION, display_url
from hqsync.store.schema import instance_meta, resources

log = logging.getLogger(__name__)

KINDS = ("service", "site", "isheet", "column", "folder", "rule")
"""Kinds of live resource, in the order an apply creates them."""

_KEY_CHECK = "key_check"


@functools.lru_cache(maxsize=65536)
def name_key(name: str) -> str:
    """Return the NFC-normalised, case-folded form under which two names clash."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def normalize_name(name: str) -> str:
    """Return a name in NFC, the form the store keeps."""
    return unicodedata.normalize("NFC", name)


@dataclass(frozen=True)
class LiveResource:
    """One row of ``resources``; ``secrets_token`` stays encrypted."""

    id: int
    kind: str
    scope: str
    name: str
    parent_id: int | None
    spec: dict[str, Any]
    fingerprints: dict[str, str]
    managed: bool
    version: int
    created_at: datetime
    updated_at: datetime
    secrets_token: bytes | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """Return (kind, scope key, name key): how plan matches live to desired."""
        return (self.kind, name_key(self.scope), name_key(self.name))


class Store:
    """An open instance store; create one with :func:`hqsync.store.open_store`."""

    def __init__(self, engine: sa.Engine, url: URL, cipher: Cipher) -> None:
        self.engine = engine
        self.url = url
        self.cipher = cipher
        self.dialect: str = engine.dialect.name
        self.url_for_display = display_url(url)

    def __repr__(self) -> str:
        return f"Store({self.url_for_display!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Transactions and schema ---------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """Open a write transaction; on SQLite it takes the write lock up front."""
        options = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}
        try:
            connection = self.engine.connect().execution_options(**options)
            with connection, connection.begin():
                yield connection
        except SQLAlchemyError as exc:
            raise self._wrap(exc) from exc

    @contextmanager
    def _reading(self, connection: sa.Connection | None) -> Iterator[sa.Connection]:
        if connection is not None:
            yield connection
            return
        try:
            with self.engine.connect() as own:
                yield own
        except SQLAlchemyError as exc:
            raise self._wrap(exc) from exc

    @contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """Open a read transaction that reads one consistent state of the store."""
        options: dict[str, Any] = {}
        if self.dialect == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        try:
            connection = self.engine.connect().execution_options(**options)
            with connection, connection.begin():
                yield connection
        except SQLAlchemyError as exc:
            raise self._wrap(exc) from exc

    def migrate(self) -> tuple[str | None, str]:
        """Migrate the schema to the newest revision; return (before, after)."""
        try:
            return migrate.upgrade(self.engine, self.url_for_display)
        except SQLAlchemyError as exc:
            raise self._wrap(exc) from exc

    def revision(self) -> str | None:
        """Return the schema revision of the database, None if never migrated."""
        with self._reading(None) as connection:
            return migrate.current_revision(connection)

    def check_schema(self, *, migrate_empty: bool) -> None:
        """Check the schema revision, migrating an empty database if asked."""
        revision = self.revision()
        migrate.check_revision(revision, self.url_for_display)
        head = migrate.head_revision()
        if revision is None and migrate_empty:
            self.migrate()
        elif revision is None:
            raise StoreError(
                f"the store at {self.url_for_display} has no schema; "
                "run: hqsync store migrate"
            )
        elif revision != head:
            raise StoreError(
                f"the store at {self.url_for_display} has schema revision "
                f"{revision}, older than this hqsync's {head}; "
                "run: hqsync store migrate"
            )

    def check_key(self) -> None:
        """Record the master key's check value, or raise if another key wrote it."""
        expected = self.cipher.key_check()
        with self._reading(None) as connection:
            stored = _get_meta(connection, _KEY_CHECK)
        if stored is None:
            try:
                with self.begin() as connection:
                    _insert_meta(connection, _KEY_CHECK, expected)
            except StoreError:
                # Another process opening the same new store recorded its key
                # first (a unique-key conflict); compare against that one.
                log.debug("key check value recorded by another process first")
            with self._reading(None) as connection:
                stored = _get_meta(connection, _KEY_CHECK)
        if stored != expected:
            raise StoreError(
                f"the master key from {self.cipher.source} is not the key the "
                f"store at {self.url_for_display} was written with; set "
                "HQSYNC_MASTER_KEY to that key"
            )

    def _wrap(self, exc: SQLAlchemyError) -> StoreError:
        # The driver's message names the host and the failing statement but not
        # the password, which display_url masks in our own part.
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return StoreError(f"store {self.url_for_display}: {detail}")

    # Instance facts --------------------------------------------------------------

    def serial(self, conn: sa.Connection | None = None) -> int:
        """Return the store serial: the number of applies that changed it."""
        with self._reading(conn) as connection:
            value = _get_meta(connection, "serial")
        return int(value) if value is not None else 0

    def bump_serial(self, conn: sa.Connection) -> int:
        """Increment the serial inside the caller's transaction; return the new one."""
        row = conn.execute(
            sa.select(instance_meta.c.value)
            .where(instance_meta.c.key == "serial")
            .with_for_update()
        ).first()
        serial = (int(row.value) if row else 0) + 1
        _set_meta(conn, "serial", str(serial))
        return serial

    def instance_id(self) -> int:
        """Return the instance's random numeric id, made on first request."""
        with self._reading(None) as connection:
            value = _get_meta(connection, "instance_id")
        if value is not None:
            return int(value)
        candidate = random_source.randbelow(2**31 - 2) + 1
        try:
            with self.begin() as connection:
                _insert_meta(connection, "instance_id", str(candidate))
        except StoreError:
            log.debug("instance id made by another process first")
        with self._reading(None) as connection:
            stored = _get_meta(connection, "instance_id")
        if stored is None:
            raise StoreError(
                f"store {self.url_for_display}: cannot record the instance id"
            )
        return int(stored)

    def lock(
        self, name: str, holder: str, timeout_s: float
    ) -> AbstractContextManager[None]:
        """Hold the named instance lock; raise LockTimeout naming the holder."""
        if self.dialect == "postgresql":
            return store_locks.postgres_lock(self.engine, name, holder, timeout_s)
        return store_locks.sqlite_lock(self.engine, name, holder, timeout_s)

    # Live resources --------------------------------------------------------------

    def read_resources(self, conn: sa.Connection | None = None) -> list[LiveResource]:
        """Read every live resource, ordered by kind order then id."""
        with self._reading(conn) as connection:
            rows = connection.execute(
                sa.select(resources).order_by(resources.c.id)
            ).all()
        order = {kind: index for index, kind in enumerate(KINDS)}
        live = [_to_live(row._mapping) for row in rows]
        live.sort(
            key=lambda resource: (order.get(resource.kind, len(KINDS)), resource.id)
        )
        return live

    def decrypt_secrets(self, resource: LiveResource) -> dict[str, str]:
        """Decrypt a live resource's secret fields; empty when it has none."""
        if resource.secrets_token is None:
            return {}
        return self.cipher.decrypt(resource.secrets_token)

    def fingerprints_of(self, secrets: Mapping[str, str]) -> dict[str, str]:
        """Return the keyed fingerprint of each secret field."""
        return {
            name: self.cipher.fingerprint(name, value)
            for name, value in secrets.items()
        }

    def insert_resource(
        self,
        conn: sa.Connection,
        *,
        kind: str,
        scope: str,
        name: str,
        spec: Mapping[str, Any],
        parent_id: int | None = None,
        secrets: Mapping[str, str] | None = None,
        managed: bool = True,
    ) -> int:
        """Insert a live resource in the caller's transaction; return its new id."""
        if kind not in KINDS:
            raise StoreError(f"unknown resource kind {kind!r}; expected one of {KINDS}")
        now = store_locks.now_utc()
        values = {
            "kind": kind,
            "scope": normalize_name(scope),
            "name": normalize_name(name),
            "name_key": name_key(name),
            "parent_id": parent_id,
            "spec": dict(spec),
            "managed": managed,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            **self._secret_columns(secrets),
        }
        try:
            result = conn.execute(sa.insert(resources).values(**values))
        except IntegrityError:
            raise StoreError(
                f"a {kind} named {name!r} already exists in scope {scope!r} "
                "(names compare case-insensitively after Unicode NFC normalisation)"
            ) from None
        new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        if new_id is None:
            raise StoreError(f"store {self.url_for_display}: insert returned no id")
        return int(new_id)

    def update_resource(
        self,
        conn: sa.Connection,
        resource_id: int,
        *,
        spec: Mapping[str, Any],
        name: str | None = None,
        secrets: Mapping[str, str] | None = None,
        managed: bool | None = None,
    ) -> int:
        """Replace a resource's spec and secrets in place; return its new version."""
        values: dict[str, Any] = {
            "spec": dict(spec),
            "version": resources.c.version + 1,
            "updated_at": store_locks.now_utc(),
            **self._secret_columns(secrets),
        }
        if name is not None:
            values |= {"name": normalize_name(name), "name_key": name_key(name)}
        if managed is not None:
            values["managed"] = managed
        result = conn.execute(
            sa.update(resources)
            .where(resources.c.id == resource_id)
            .values(**values)
            .returning(resources.c.version)
        )
        version = result.scalar_one_or_none()
        if version is None:
            raise StoreError(f"live resource {resource_id} not found")
        return int(version)

    def delete_resource(self, conn: sa.Connection, resource_id: int) -> None:
        """Delete a resource and, by cascade, its children."""
        result = conn.execute(sa.delete(resources).where(resources.c.id == resource_id))
        if result.rowcount == 0:
            raise StoreError(f"live resource {resource_id} not found")

    def _secret_columns(self, secrets: Mapping[str, str] | None) -> dict[str, Any]:
        if not secrets:
            return {"secrets": None, "fingerprints": {}}
        return {
            "secrets": self.cipher.encrypt(dict(secrets)),
            "fingerprints": self.fingerprints_of(secrets),
        }


def _to_live(row: sa.RowMapping) -> LiveResource:
    return LiveResource(
        id=row["id"],
        kind=row["kind"],
        scope=row["scope"],
        name=row["name"],
        parent_id=row["parent_id"],
        spec=row["spec"],
        fingerprints=row["fingerprints"] or {},
        managed=bool(row["managed"]),
        version=row["version"],
        created_at=store_locks.as_utc(row["created_at"]),
        updated_at=store_locks.as_utc(row["updated_at"]),
        secrets_token=bytes(row["secrets"]) if row["secrets"] is not None else None,
    )


def _get_meta(connection: sa.Connection, key: str) -> str | None:
    value = connection.execute(
        sa.select(instance_meta.c.value).where(instance_meta.c.key == key)
    ).scalar_one_or_none()
    return None if value is None else str(value)


def _insert_meta(connection: sa.Connection, key: str, value: str) -> None:
    connection.execute(sa.insert(instance_meta).values(key=key, value=value))


def _set_meta(connection: sa.Connection, key: str, value: str) -> None:
    updated = connection.execute(
        sa.update(instance_meta).where(instance_meta.c.key == key).values(value=value)
    )
    if updated.rowcount == 0:
        _insert_meta(connection, key, value)

"""The instance store: live resources, encrypted secrets, serial, lock, migrations.

:func:`open_store` takes a store URL (see :mod:`hqsync.store.engine`), loads
the master key (see :mod:`hqsync.store.crypto` for where it comes from),
migrates an empty database to the newest schema (see
:mod:`hqsync.store.migrate`) and returns a :class:`Store`. The tables are in
:mod:`hqsync.store.schema`.

Names are kept in Unicode NFC; :func:`name_key` (NFC, then case-folded) is
the form under which two names clash.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from hqsync.errors import StoreError
from hqsync.store.crypto import Cipher, default_postgres_key_file, load_cipher
from hqsync.store.engine import (
    create_store_engine,
    display_url,
    parse_store_url,
    sqlite_path,
)
from hqsync.store.store import KINDS, LiveResource, Store, name_key, normalize_name

__all__ = [
    "KINDS",
    "Cipher",
    "LiveResource",
    "Store",
    "name_key",
    "normalize_name",
    "open_store",
]


def open_store(
    url: str, *, key_file: Path | None = None, migrate: bool = True
) -> Store:
    """Open the store at ``url``, creating and migrating an empty one on first use.

    With ``migrate=False`` the schema is only checked against a newer revision
    (for ``hqsync store migrate``, which then calls :meth:`Store.migrate`).
    """
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        default_key = path.with_name(path.name + ".key") if path is not None else None
    else:
        default_key = default_postgres_key_file(
            parsed.host, parsed.port, parsed.database or "postgres"
        )
    engine = create_store_engine(parsed)
    try:
        store = Store(engine, parsed, load_cipher(default_key, key_file))
        if migrate:
            store.check_schema(migrate_empty=True)
            store.check_key()
        else:
            from hqsync.store import migrate as migrations

            migrations.check_revision(store.revision(), store.url_for_display)
    except SQLAlchemyError as exc:
        engine.dispose()
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(
            f"cannot open the store at {display_url(parsed)}: {detail}"
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return store

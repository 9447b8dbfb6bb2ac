"""The instance store on SQLite and PostgreSQL: schema, serial, resources, keys."""

from __future__ import annotations

import concurrent.futures
import os
import stat
import unicodedata
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet

from hqsync.errors import SchemaVersionError, StoreError
from hqsync.store import Store, name_key, open_store
from hqsync.store.engine import parse_store_url
from hqsync.store.migrate import head_revision
from hqsync.store.schema import metadata

CANARY = "canary-3f9a1c7e-secret"


def test_open_store_creates_sqlite_file_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///nested/dir/local.db"):
        pass
    assert (tmp_path / "nested" / "dir" / "local.db").is_file()


def test_open_store_sqlite_pragmas(tmp_path: Path) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/a.db") as store,
        store.engine.connect() as connection,
    ):
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert journal == "wal"
    assert foreign_keys == 1
    assert busy is not None and busy > 0


def test_open_store_schema_matches_schema_module(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_open_store_records_head_revision(store: Store) -> None:
    assert store.revision() == head_revision()


def test_open_store_dialect(store: Store, store_url: str) -> None:
    assert store.dialect == store_url.split(":")[0]


def test_open_store_newer_schema_raises(store_url: str, tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    with open_store(store_url, key_file=key) as store, store.begin() as connection:
        connection.execute(
            sa.text("UPDATE alembic_version SET version_num = 'ffff9999'")
        )
    with pytest.raises(SchemaVersionError, match=r"ffff9999.*newer hqsync"):
        open_store(store_url, key_file=key)


def test_open_store_newer_schema_raises_without_migrate(
    store_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "master.key"
    with open_store(store_url, key_file=key) as store, store.begin() as connection:
        connection.execute(
            sa.text("UPDATE alembic_version SET version_num = 'ffff9999'")
        )
    with pytest.raises(SchemaVersionError):
        open_store(store_url, key_file=key, migrate=False)


def test_open_store_without_migrate_leaves_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    with open_store(url, migrate=False) as store:
        assert store.revision() is None
        store.migrate()
        assert store.revision() == head_revision()


def test_open_store_unknown_revision_raises(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    with open_store(url) as store, store.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'base0'"))
    with pytest.raises(SchemaVersionError):
        open_store(url)


def test_migrate_is_idempotent(store: Store) -> None:
    before, after = store.migrate()
    assert before == after == head_revision()


def test_parse_store_url_maps_postgres_to_psycopg() -> None:
    assert parse_store_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_store_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_parse_store_url_rejects_other_schemes() -> None:
    with pytest.raises(StoreError, match="unsupported store URL scheme 'mysql'"):
        parse_store_url("mysql://u:pw@h/db")


def test_url_for_display_hides_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(
            "postgresql://user:hunter2-secret@127.0.0.1:1/db", key_file=tmp_path / "k"
        )
    assert "hunter2-secret" not in str(caught.value)


def test_serial_starts_at_zero_and_bumps(store: Store) -> None:
    assert store.serial() == 0
    with store.begin() as connection:
        assert store.bump_serial(connection) == 1
        assert store.bump_serial(connection) == 2
    assert store.serial() == 2


def test_serial_rolls_back_with_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.begin() as connection:
        store.bump_serial(connection)
        raise RuntimeError("abort")
    assert store.serial() == 0


def test_instance_id_is_stable(store_url: str, tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    with open_store(store_url, key_file=key) as store:
        first = store.instance_id()
    with open_store(store_url, key_file=key) as store:
        second = store.instance_id()
    assert first == second
    assert first > 0


def _insert_service(store: Store, name: str = "svc", **secrets: str) -> int:
    with store.begin() as connection:
        return store.insert_resource(
            connection,
            kind="service",
            scope="",
            name=name,
            spec={"url": "https://example.invalid/hook", "status": "active"},
            secrets=secrets or None,
        )


def test_insert_resource_reads_back(store: Store) -> None:
    resource_id = _insert_service(store, key=CANARY)
    (live,) = store.read_resources()
    assert live.id == resource_id
    assert live.kind == "service"
    assert live.spec == {"url": "https://example.invalid/hook", "status": "active"}
    assert live.managed is True
    assert live.version == 1
    assert live.created_at.tzinfo is not None


def test_insert_resource_encrypts_secrets(store: Store) -> None:
    _insert_service(store, key=CANARY)
    with store.engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT secrets FROM resources")).scalar_one()
    (live,) = store.read_resources()
    assert CANARY.encode() not in bytes(raw)
    assert CANARY not in repr(live)
    assert store.decrypt_secrets(live) == {"key": CANARY}


def test_insert_resource_fingerprint_is_keyed(store: Store) -> None:
    _insert_service(store, key=CANARY)
    (live,) = store.read_resources()
    other = Store(
        store.engine,
        store.url,
        store.cipher.__class__(Fernet.generate_key(), source="test"),
    )
    assert live.fingerprints["key"] == store.cipher.fingerprint("key", CANARY)
    assert live.fingerprints["key"] != other.cipher.fingerprint("key", CANARY)


def test_insert_resource_nfc_nfd_names_clash(store: Store) -> None:
    nfc = unicodedata.normalize("NFC", "Zürich")
    nfd = unicodedata.normalize("NFD", "Zürich")
    _insert_service(store, nfc)
    with pytest.raises(StoreError, match="already exists"):
        _insert_service(store, nfd)


def test_insert_resource_case_clash(store: Store) -> None:
    _insert_service(store, "Intake")
    with pytest.raises(StoreError, match="already exists"):
        _insert_service(store, "intake")


def test_insert_resource_keeps_name_in_nfc(store: Store) -> None:
    _insert_service(store, unicodedata.normalize("NFD", "Zürich"))
    (live,) = store.read_resources()
    assert live.name == unicodedata.normalize("NFC", "Zürich")


def test_name_key_folds_case_and_form() -> None:
    assert name_key("STRASSE") == name_key("straße")
    assert name_key(unicodedata.normalize("NFD", "é")) == name_key("É")


def test_update_resource_bumps_version(store: Store) -> None:
    resource_id = _insert_service(store, key=CANARY)
    with store.begin() as connection:
        version = store.update_resource(
            connection, resource_id, spec={"status": "inactive"}, secrets={"key": "new"}
        )
    (live,) = store.read_resources()
    assert version == 2
    assert live.spec == {"status": "inactive"}
    assert store.decrypt_secrets(live) == {"key": "new"}


def test_update_resource_missing_raises(store: Store) -> None:
    with pytest.raises(StoreError, match="not found"), store.begin() as connection:
        store.update_resource(connection, 999, spec={})


def test_delete_resource_cascades_to_children(store: Store) -> None:
    with store.begin() as connection:
        site = store.insert_resource(
            connection, kind="site", scope="", name="s", spec={}
        )
        store.insert_resource(
            connection, kind="isheet", scope="s", name="i", spec={}, parent_id=site
        )
    with store.begin() as connection:
        store.delete_resource(connection, site)
    assert store.read_resources() == []


def test_insert_resource_rejects_unknown_kind(store: Store) -> None:
    with (
        pytest.raises(StoreError, match="unknown resource kind"),
        store.begin() as conn,
    ):
        store.insert_resource(conn, kind="widget", scope="", name="w", spec={})


def test_read_resources_orders_by_kind(store: Store) -> None:
    with store.begin() as connection:
        site = store.insert_resource(
            connection, kind="site", scope="", name="s", spec={}
        )
        store.insert_resource(
            connection, kind="rule", scope="s", name="r", spec={}, parent_id=site
        )
        store.insert_resource(connection, kind="service", scope="", name="x", spec={})
    kinds = [resource.kind for resource in store.read_resources()]
    assert kinds == ["service", "site", "rule"]


def test_key_file_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HQSYNC_MASTER_KEY", raising=False)
    with open_store(f"sqlite:///{tmp_path}/k.db"):
        pass
    key_file = tmp_path / "k.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_key_file_readable_by_others_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HQSYNC_MASTER_KEY", raising=False)
    key_file = tmp_path / "k.db.key"
    key_file.write_bytes(Fernet.generate_key())
    os.chmod(key_file, 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        open_store(f"sqlite:///{tmp_path}/k.db")


def test_master_key_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HQSYNC_MASTER_KEY", Fernet.generate_key().decode())
    with open_store(f"sqlite:///{tmp_path}/e.db") as store:
        assert store.cipher.source == "HQSYNC_MASTER_KEY"
    assert not (tmp_path / "e.db.key").exists()


def test_master_key_invalid_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HQSYNC_MASTER_KEY", "not-a-key")
    with pytest.raises(StoreError, match="invalid master key from HQSYNC_MASTER_KEY"):
        open_store(f"sqlite:///{tmp_path}/e.db")


def test_master_key_mismatch_rejected(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url, key_file=tmp_path / "one.key"):
        pass
    with pytest.raises(StoreError, match="not the key the store"):
        open_store(store_url, key_file=tmp_path / "two.key")


def test_open_store_concurrent_first_use(store_url: str, tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    with open_store(store_url, key_file=key, migrate=False) as store:
        store.migrate()

    def open_and_close() -> str | None:
        with open_store(store_url, key_file=key) as opened:
            return opened.revision()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        revisions = list(pool.map(lambda _: open_and_close(), range(8)))
    assert revisions == [head_revision()] * 8


def test_open_store_older_schema_needs_migrate(store_url: str, tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    with open_store(store_url, key_file=key) as store, store.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_audit_records_retry_of"))
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(
        StoreError, match=r"older than this hqsync.*hqsync store migrate"
    ):
        open_store(store_url, key_file=key)
    with open_store(store_url, key_file=key, migrate=False) as store:
        before, after = store.migrate()
    assert (before, after) == ("0001", head_revision())
    with open_store(store_url, key_file=key) as store:
        assert store.revision() == head_revision()

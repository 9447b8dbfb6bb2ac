"""The instance lock: contention, holder in the message, release, expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hqsync.errors import LockTimeout
from hqsync.store import Store, open_store
from hqsync.store.locks import now_utc
from hqsync.store.schema import locks


def test_lock_contention_names_holder(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    other = open_store(store_url, key_file=tmp_path / "master.key")
    try:
        with (
            store.lock("apply", "alice@host-a pid 1", timeout_s=5),
            pytest.raises(LockTimeout, match="alice@host-a pid 1"),
            other.lock("apply", "bob@host-b pid 2", timeout_s=0.3),
        ):
            pass
    finally:
        other.close()


def test_lock_released_after_block(store: Store) -> None:
    with store.lock("apply", "first", timeout_s=1):
        pass
    with store.lock("apply", "second", timeout_s=0.5):
        pass


def test_lock_released_after_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.lock("apply", "first", timeout_s=1):
        raise RuntimeError("boom")
    with store.lock("apply", "second", timeout_s=0.5):
        pass


def test_lock_names_are_independent(store: Store) -> None:
    with store.lock("apply", "a", timeout_s=1), store.lock("other", "b", timeout_s=0.3):
        pass


def test_lock_expired_row_taken_over(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/l.db") as store:
        past = now_utc() - timedelta(hours=1)
        with store.begin() as connection:
            connection.execute(
                sa.insert(locks).values(
                    name="apply", holder="crashed", acquired_at=past, expires_at=past
                )
            )
        with store.lock("apply", "new", timeout_s=0.5):
            pass


def test_lock_stale_row_ignored_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    with open_store(postgres_url, key_file=tmp_path / "k") as store:
        future = now_utc() + timedelta(hours=1)
        with store.begin() as connection:
            connection.execute(
                sa.insert(locks).values(
                    name="apply",
                    holder="dead session",
                    acquired_at=future,
                    expires_at=future,
                )
            )
        with store.lock("apply", "new", timeout_s=0.5):
            pass

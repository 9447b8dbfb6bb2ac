"""Fixtures for store tests: one store per test on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hqsync.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a fresh store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/hqsync.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """Open a migrated store with its key file in the test's folder."""
    opened = open_store(store_url, key_file=tmp_path / "master.key")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(autouse=True)
def _no_master_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Key-file tests must not pick up a key from the developer's environment.
    monkeypatch.delenv("HQSYNC_MASTER_KEY", raising=False)

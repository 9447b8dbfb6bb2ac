"""Fixtures for delivery tests: a fresh SQLite store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hqsync.store import Store, open_store


@pytest.fixture(autouse=True)
def _no_master_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HQSYNC_MASTER_KEY", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Open a migrated SQLite store in the test's folder."""
    opened = open_store(f"sqlite:///{tmp_path}/hqsync.db", key_file=tmp_path / "k.key")
    try:
        yield opened
    finally:
        opened.close()

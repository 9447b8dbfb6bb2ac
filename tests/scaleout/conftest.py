"""Fixtures for scale-out tests: a master key every process shares."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet


@pytest.fixture(autouse=True)
def _shared_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runner processes and the test open the same store, so they share a key,
    # as every host sharing a PostgreSQL store must.
    monkeypatch.setenv("HQSYNC_MASTER_KEY", Fernet.generate_key().decode())

"""Fixtures for the audit tests: store engines and a record factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hqsync.store import schema

from .helpers import AuditFactory


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """Return an engine on a fresh SQLite store file with every table created."""
    store_engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    schema.metadata.create_all(store_engine)
    yield store_engine
    store_engine.dispose()


@pytest.fixture
def factory(engine: sa.Engine) -> AuditFactory:
    """Return a record factory on the SQLite store."""
    return AuditFactory(engine)


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """Return an engine on a fresh PostgreSQL database with every table created."""
    url = sa.make_url(postgres_url).set(drivername="postgresql+psycopg")
    store_engine = sa.create_engine(url)
    schema.metadata.create_all(store_engine)
    yield store_engine
    store_engine.dispose()

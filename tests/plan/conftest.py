"""Fixtures for plan tests: config folders, stores on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hqsync.store import Store, open_store

from .helpers import RULES, SERVICES, SITE, ConfigDir


@pytest.fixture(autouse=True)
def _master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HQSYNC_MASTER_KEY", raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a fresh store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/plan-store/hqsync.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """Open a SQLite store in the test's folder."""
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        yield store


@pytest.fixture
def config_dir(tmp_path: Path) -> ConfigDir:
    """Return an empty config folder."""
    return ConfigDir(tmp_path / "configs")


@pytest.fixture
def basic_config(config_dir: ConfigDir) -> ConfigDir:
    """Return a config folder with two services, one site and two rules."""
    config_dir.write("services.yaml", SERVICES)
    config_dir.write("site.yaml", SITE)
    config_dir.write("rules.yaml", RULES)
    return config_dir

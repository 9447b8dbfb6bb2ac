"""Fixtures for template tests: instance ``a`` applied, ``b`` empty, a receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Instances, Receiver


@pytest.fixture(autouse=True)
def _no_master_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HQSYNC_MASTER_KEY", raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Start a recording receiver on 127.0.0.1 for instance ``b``'s services."""
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def instances(tmp_path: Path, receiver: Receiver) -> Instances:
    """Return both config folders, with instance ``a``'s configuration applied."""
    created = Instances(tmp_path, receiver.port)
    applied = created.run(created.a, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.output
    return created


@pytest.fixture
def template_file(instances: Instances) -> Path:
    """Export site ``matters`` of instance ``a`` as a template file."""
    path = instances.root / "matters.template.yaml"
    result = instances.run(
        instances.a, "template", "export", "matters", "--out", str(path)
    )
    assert result.returncode == 0, result.output
    return path

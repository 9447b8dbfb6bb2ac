"""Fixtures of the sandbox tests: servers on free loopback ports, V1 bodies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hqsync.delivery.payload import (
    build_common_fields,
    build_document_body,
    build_isheet_body,
)
from hqsync.sandbox import SandboxServer

from .sandbox_helpers import StartSandbox, canary_config


@pytest.fixture
def start_sandbox() -> Iterator[StartSandbox]:
    """Start sandboxes with canary credentials; stop them after the test."""
    servers: list[SandboxServer] = []

    def start(**settings: Any) -> SandboxServer:
        server = SandboxServer(canary_config(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> SandboxServer:
    """Return a running sandbox with default behaviour."""
    return start_sandbox()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """Return an HTTP client that follows no redirects."""
    with httpx.Client(timeout=10.0) as http_client:
        yield http_client


def _common_fields(event_type: str, content_id: int) -> dict[str, Any]:
    return build_common_fields(
        instance_id=4711,
        instance_base_url="https://highq.example.invalid",
        timezone="Europe/London",
        site_id=3,
        author=12,
        event_type=event_type,
        content_id=content_id,
        rule_id=21,
        executed_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    )


@pytest.fixture
def isheet_body() -> dict[str, Any]:
    """Return a valid V1 body of an iSheet item update, as the runner builds it."""
    return build_isheet_body(
        common=_common_fields("isheet_item_updated", 1042),
        isheet_id=5,
        column_ids=[51, 52],
    )


@pytest.fixture
def file_body() -> dict[str, Any]:
    """Return a valid V1 body of a file added, as the runner builds it."""
    return build_document_body(
        common=_common_fields("file_added", 88),
        parent_folder_id=9,
        file_name="nda.pdf",
    )

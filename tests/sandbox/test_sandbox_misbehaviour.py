"""Injected failures and slow responses, for rehearsing the runner's retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hqsync.sandbox import SandboxServer

from .sandbox_helpers import StartSandbox, fetch_token, pa_headers

REQUESTS = 30


def _statuses(
    sandbox: SandboxServer, client: httpx.Client, body: dict[str, Any]
) -> list[int]:
    url = sandbox.urls.trigger_url()
    return [
        client.post(url, json=body, headers=pa_headers()).status_code
        for _ in range(REQUESTS)
    ]


def test_fail_rate_same_seed_repeats_outcomes(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    first = _statuses(start_sandbox(fail_rate=0.5, seed=7), client, isheet_body)
    second = _statuses(start_sandbox(fail_rate=0.5, seed=7), client, isheet_body)
    assert first == second


def test_fail_rate_half_mixes_outcomes(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    statuses = _statuses(start_sandbox(fail_rate=0.5, seed=7), client, isheet_body)
    assert set(statuses) == {202, 503}


def test_fail_rate_other_seed_changes_outcomes(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    first = _statuses(start_sandbox(fail_rate=0.5, seed=7), client, isheet_body)
    second = _statuses(start_sandbox(fail_rate=0.5, seed=8), client, isheet_body)
    assert first != second


def test_fail_rate_one_fails_every_request(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    statuses = _statuses(start_sandbox(fail_rate=1.0), client, isheet_body)
    assert set(statuses) == {503}


def test_fail_rate_zero_fails_nothing(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    assert set(_statuses(sandbox, client, isheet_body)) == {202}


def test_failure_comes_before_authentication(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(fail_rate=1.0)
    response = client.post(sandbox.urls.trigger_url(), json=isheet_body)
    assert response.status_code == 503
    delivery = sandbox.deliveries()[0]
    assert delivery.injected_failure
    assert delivery.auth == "not_checked"


def test_failure_sends_retry_after(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(fail_rate=1.0, retry_after=7)
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
    )
    assert response.headers["Retry-After"] == "7"


def test_failure_without_retry_after_sends_none(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(fail_rate=1.0)
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
    )
    assert "Retry-After" not in response.headers


def test_failure_status_429(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(fail_rate=1.0, fail_status=429)
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
    )
    assert response.status_code == 429


def test_fail_rate_spares_token_endpoint(
    start_sandbox: StartSandbox, client: httpx.Client
) -> None:
    sandbox = start_sandbox(fail_rate=1.0)
    assert fetch_token(client, sandbox)


def test_slow_return_misses_short_timeout(
    start_sandbox: StartSandbox, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(slow_seconds=0.5)
    with httpx.Client(timeout=0.05) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post(
            sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
        )


def test_slow_return_arrives_within_long_timeout(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(slow_seconds=0.2)
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
    )
    assert response.status_code == 202


def test_slow_token_return_misses_short_timeout(
    start_sandbox: StartSandbox,
) -> None:
    sandbox = start_sandbox(slow_seconds=0.5)
    with httpx.Client(timeout=0.05) as impatient, pytest.raises(httpx.ReadTimeout):
        fetch_token(impatient, sandbox)

"""What the sandbox records, and how tests and people read it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from hqsync.sandbox import SandboxServer

from .sandbox_helpers import CANARIES, StartSandbox, fetch_token, pa_headers

DELIVERY_ID = "X-HighQ-Delivery-Id"


def _deliver(
    sandbox: SandboxServer,
    client: httpx.Client,
    body: dict[str, Any],
    delivery_id: str,
    key: str | None = None,
) -> httpx.Response:
    headers = pa_headers(**{DELIVERY_ID: delivery_id})
    if key is not None:
        headers["HighQ-Auth-Key"] = key
    return client.post(sandbox.urls.trigger_url(), json=body, headers=headers)


def test_deliveries_keep_arrival_order(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    for delivery_id in ("d-1", "d-2", "d-3"):
        _deliver(sandbox, client, isheet_body, delivery_id)
    recorded = [(d.sequence, d.delivery_id) for d in sandbox.deliveries()]
    assert recorded == [(1, "d-1"), (2, "d-2"), (3, "d-3")]


def test_delivery_records_request_and_status(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    delivery = sandbox.deliveries()[0]
    assert delivery.service == "power-automate"
    assert delivery.path.endswith("/triggers/manual/paths/invoke")
    assert delivery.auth == "ok"
    assert delivery.status == 202
    assert delivery.body == isheet_body


def test_delivery_path_has_no_signature(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    assert "sig" not in sandbox.deliveries()[0].path


def test_deliveries_endpoint_matches_python_api(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    _deliver(sandbox, client, isheet_body, "d-2", key="wrong")
    listed = client.get(sandbox.urls.deliveries_url).json()
    assert listed == [delivery.to_dict() for delivery in sandbox.deliveries()]


def test_deliveries_endpoint_has_no_credential(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    token = fetch_token(client, sandbox)
    client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": f"Bearer {token}"},
    )
    listing = client.get(sandbox.urls.deliveries_url).text
    for secret in (*CANARIES, token):
        assert secret not in listing


def test_delivery_retried_after_success_is_duplicate(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    _deliver(sandbox, client, isheet_body, "d-1")
    assert [d.duplicate for d in sandbox.deliveries()] == [False, True]


def test_delivery_retried_after_failure_is_not_duplicate(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1", key="wrong")
    _deliver(sandbox, client, isheet_body, "d-1")
    assert [d.duplicate for d in sandbox.deliveries()] == [False, False]


def test_delivery_id_header_is_configurable(
    start_sandbox: StartSandbox, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    sandbox = start_sandbox(delivery_id_header="Idempotency-Key")
    client.post(
        sandbox.urls.trigger_url(),
        json=isheet_body,
        headers=pa_headers(**{"Idempotency-Key": "k-9"}),
    )
    assert sandbox.deliveries()[0].delivery_id == "k-9"


def test_record_file_gets_one_line_per_delivery(
    start_sandbox: StartSandbox,
    client: httpx.Client,
    isheet_body: dict[str, Any],
    tmp_path: Path,
) -> None:
    record = tmp_path / "deliveries.jsonl"
    sandbox = start_sandbox(record_path=record)
    _deliver(sandbox, client, isheet_body, "d-1")
    _deliver(sandbox, client, isheet_body, "d-2", key="wrong")
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [delivery.to_dict() for delivery in sandbox.deliveries()]


def test_record_file_keeps_earlier_lines(
    start_sandbox: StartSandbox,
    client: httpx.Client,
    isheet_body: dict[str, Any],
    tmp_path: Path,
) -> None:
    record = tmp_path / "deliveries.jsonl"
    record.write_text('{"sequence": 1}\n')
    sandbox = start_sandbox(record_path=record)
    _deliver(sandbox, client, isheet_body, "d-1")
    assert len(record.read_text().splitlines()) == 2


def test_unrouted_post_is_recorded_as_404(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(f"{sandbox.url}/services/data/v60.0", json=isheet_body)
    assert response.status_code == 404
    delivery = sandbox.deliveries()[0]
    assert delivery.service == "unknown"
    assert delivery.status == 404


def test_clear_endpoint_forgets_deliveries(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    client.delete(sandbox.urls.deliveries_url).raise_for_status()
    assert sandbox.deliveries() == []


def test_health_counts_requests(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    _deliver(sandbox, client, isheet_body, "d-1")
    fetch_token(client, sandbox)
    health = client.get(f"{sandbox.url}/_sandbox/health").json()
    assert health == {"status": "ok", "deliveries": 1, "token_requests": 1}

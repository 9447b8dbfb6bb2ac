"""The sandbox's log records name what happened and never a credential."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from hqsync.sandbox import SandboxServer

from .sandbox_helpers import CANARIES, CANARY_PA_SIG, fetch_token, pa_headers


def _exercise(sandbox: SandboxServer, client: httpx.Client, body: Any) -> str:
    url = sandbox.urls.trigger_url()
    client.post(url, json=body, headers=pa_headers(**{"X-HighQ-Delivery-Id": "d-1"}))
    client.post(url, json=body, headers=pa_headers("wrong"))
    client.post(url.replace(CANARY_PA_SIG, "forged"), json=body)
    token = fetch_token(client, sandbox)
    client.post(
        sandbox.urls.apex_url(),
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    client.post(sandbox.urls.token_url, data={"grant_type": "client_credentials"})
    return token


def test_logs_have_no_credential(
    sandbox: SandboxServer,
    client: httpx.Client,
    isheet_body: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _exercise(sandbox, client, isheet_body)
    # The test's own client (httpx) logs the URLs it sends; only the server's
    # records count here.
    server_text = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert "hqsync.sandbox" in {
        record.name.rsplit(".", 1)[0] for record in caplog.records
    }
    for secret in (*CANARIES, token):
        assert secret not in server_text


def test_logs_name_delivery_and_status(
    sandbox: SandboxServer,
    client: httpx.Client,
    isheet_body: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hqsync.sandbox")
    _exercise(sandbox, client, isheet_body)
    first = next(r for r in caplog.records if r.getMessage().startswith("delivery 1"))
    assert "responded 202" in first.getMessage()
    assert "d-1" in first.getMessage()

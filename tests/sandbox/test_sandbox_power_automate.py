"""The Power Automate-style trigger: signature, HighQ-Auth-Key, 202."""

from __future__ import annotations

from typing import Any

import httpx

from hqsync.sandbox import SandboxServer

from .sandbox_helpers import CANARIES, CANARY_PA_SIG, pa_headers


def test_trigger_valid_request_returns_202(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
    )
    assert response.status_code == 202


def test_trigger_success_has_empty_body(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers()
    )
    assert response.content == b""


def test_trigger_file_event_returns_202(
    sandbox: SandboxServer, client: httpx.Client, file_body: dict[str, Any]
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json=file_body, headers=pa_headers()
    )
    assert response.status_code == 202


def test_trigger_missing_key_returns_401(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(sandbox.urls.trigger_url(), json=isheet_body)
    assert response.status_code == 401
    assert sandbox.deliveries()[0].auth == "missing_key"


def test_trigger_wrong_key_returns_401(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json=isheet_body, headers=pa_headers("wrong")
    )
    assert response.status_code == 401
    assert sandbox.deliveries()[0].auth == "invalid_key"


def test_trigger_wrong_signature_returns_401(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    url = sandbox.urls.trigger_url().replace(CANARY_PA_SIG, "forged")
    response = client.post(url, json=isheet_body, headers=pa_headers())
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "DirectApiInvalidAuthorizationSignature"


def test_trigger_missing_signature_returns_401(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    url = sandbox.urls.trigger_url(with_signature=False)
    response = client.post(url, json=isheet_body, headers=pa_headers())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "DirectApiAuthorizationRequired"


def test_trigger_missing_api_version_returns_400(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    url = sandbox.urls.trigger_url().replace("api-version", "version")
    response = client.post(url, json=isheet_body, headers=pa_headers())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_trigger_logic_apps_path_returns_202(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    url = sandbox.urls.trigger_url().replace("/powerautomate/workflows/", "/workflows/")
    response = client.post(url, json=isheet_body, headers=pa_headers())
    assert response.status_code == 202


def test_trigger_get_returns_405(sandbox: SandboxServer, client: httpx.Client) -> None:
    response = client.get(sandbox.urls.trigger_url(), headers=pa_headers())
    assert response.status_code == 405


def test_trigger_auth_returns_contain_no_credential(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    url = sandbox.urls.trigger_url()
    responses = [
        client.post(url, json=isheet_body).text,
        client.post(url, json=isheet_body, headers=pa_headers("wrong")).text,
        client.post(url.replace(CANARY_PA_SIG, "x"), json=isheet_body).text,
    ]
    for text in responses:
        for canary in CANARIES:
            assert canary not in text

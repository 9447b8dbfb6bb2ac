"""The Salesforce-style pair: OAuth2 client credentials and Apex REST."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from hqsync.sandbox import SandboxServer

from .sandbox_helpers import (
    CANARIES,
    CANARY_CLIENT_ID,
    CANARY_CLIENT_SECRET,
    StartSandbox,
    fetch_token,
)

GRANT = {"grant_type": "client_credentials"}
FORM_CREDENTIALS = {
    **GRANT,
    "client_id": CANARY_CLIENT_ID,
    "client_secret": CANARY_CLIENT_SECRET,
}


def test_token_form_credentials_issue_bearer_token(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(sandbox.urls.token_url, data=FORM_CREDENTIALS)
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"]
    assert token["instance_url"] == sandbox.url
    assert token["issued_at"].isdigit()


def test_token_response_has_no_expires_in(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    token = client.post(sandbox.urls.token_url, data=FORM_CREDENTIALS).json()
    assert "expires_in" not in token


def test_token_signature_signs_id_and_issued_at(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    token = client.post(sandbox.urls.token_url, data=FORM_CREDENTIALS).json()
    digest = hmac.new(
        CANARY_CLIENT_SECRET.encode(),
        (token["id"] + token["issued_at"]).encode(),
        hashlib.sha256,
    ).digest()
    assert token["signature"] == base64.b64encode(digest).decode()


def test_token_basic_credentials_issue_token(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(
        sandbox.urls.token_url,
        data=GRANT,
        auth=(CANARY_CLIENT_ID, CANARY_CLIENT_SECRET),
    )
    assert response.status_code == 200


def test_token_basic_credentials_are_form_decoded(
    start_sandbox: StartSandbox, client: httpx.Client
) -> None:
    # RFC 6749 section 2.3.1: id and secret are form-encoded before base64.
    sandbox = start_sandbox(sf_client_secret="s:e%cret+1")
    pair = f"{CANARY_CLIENT_ID}:{quote('s:e%cret+1', safe='')}"
    authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    response = client.post(
        sandbox.urls.token_url, data=GRANT, headers={"Authorization": authorization}
    )
    assert response.status_code == 200


def test_token_scope_is_echoed(sandbox: SandboxServer, client: httpx.Client) -> None:
    data = {**FORM_CREDENTIALS, "scope": "api refresh_token"}
    token = client.post(sandbox.urls.token_url, data=data).json()
    assert token["scope"] == "api refresh_token"


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_id": CANARY_CLIENT_ID, "client_secret": "wrong"},
        {"client_id": "unknown", "client_secret": CANARY_CLIENT_SECRET},
        {},
    ],
    ids=["wrong-secret", "unknown-client", "no-credentials"],
)
def test_token_bad_credentials_return_invalid_client(
    sandbox: SandboxServer, client: httpx.Client, credentials: dict[str, str]
) -> None:
    response = client.post(sandbox.urls.token_url, data={**GRANT, **credentials})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_token_wrong_basic_secret_returns_invalid_client(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(
        sandbox.urls.token_url, data=GRANT, auth=(CANARY_CLIENT_ID, "wrong")
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_token_password_grant_returns_unsupported(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    data = {**FORM_CREDENTIALS, "grant_type": "password"}
    response = client.post(sandbox.urls.token_url, data=data)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_token_json_body_returns_unsupported(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(sandbox.urls.token_url, json=FORM_CREDENTIALS)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_token_two_auth_methods_return_invalid_request(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(
        sandbox.urls.token_url,
        data=FORM_CREDENTIALS,
        auth=(CANARY_CLIENT_ID, CANARY_CLIENT_SECRET),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_requests_are_recorded(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    client.post(sandbox.urls.token_url, data=FORM_CREDENTIALS)
    client.post(sandbox.urls.token_url, data={**GRANT, "client_id": "unknown"})
    outcomes = [request.outcome for request in sandbox.token_requests()]
    assert outcomes == ["issued", "invalid_client"]


def test_token_requests_endpoint_has_no_credential(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    client.post(sandbox.urls.token_url, data=FORM_CREDENTIALS)
    listing = client.get(f"{sandbox.url}/_sandbox/token-requests").text
    for canary in CANARIES:
        assert canary not in listing


def test_apex_valid_token_returns_201(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    token = fetch_token(client, sandbox)
    response = client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201


def test_apex_token_from_instance_url_works(
    sandbox: SandboxServer, client: httpx.Client, file_body: dict[str, Any]
) -> None:
    token = client.post(sandbox.urls.token_url, data=FORM_CREDENTIALS).json()
    url = f"{token['instance_url']}/services/apexrest/v1/highq/files"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    response = client.post(url, json=file_body, headers=headers)
    assert response.status_code == 201


def test_apex_unknown_token_returns_invalid_session(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": "Bearer 00Dnot-issued"},
    )
    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert sandbox.deliveries()[0].auth == "invalid_token"


def test_apex_missing_token_returns_401(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    response = client.post(sandbox.urls.apex_url(), json=isheet_body)
    assert response.status_code == 401
    assert sandbox.deliveries()[0].auth == "missing_token"


def test_apex_revoked_token_returns_401(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    token = fetch_token(client, sandbox)
    assert sandbox.revoke_tokens() == 1
    response = client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


def test_apex_revoke_endpoint_revokes_tokens(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    token = fetch_token(client, sandbox)
    client.post(f"{sandbox.url}/_sandbox/revoke-tokens").raise_for_status()
    response = client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


def test_apex_new_token_after_revoke_works(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    fetch_token(client, sandbox)
    sandbox.revoke_tokens()
    token = fetch_token(client, sandbox)
    response = client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201


def test_apex_oauth_scheme_is_accepted(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: dict[str, Any]
) -> None:
    token = fetch_token(client, sandbox)
    response = client.post(
        sandbox.urls.apex_url(),
        json=isheet_body,
        headers={"Authorization": f"OAuth {token}"},
    )
    assert response.status_code == 201

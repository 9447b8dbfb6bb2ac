"""V1 body checks on both webhook endpoints: a mismatch returns 400."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hqsync.sandbox import SandboxServer

from .sandbox_helpers import fetch_token, pa_headers

Body = dict[str, Any]


def _renamed(body: Body, old: str, new: str) -> Body:
    changed = dict(body)
    changed[new] = changed.pop(old)
    return changed


def _without(body: Body, name: str) -> Body:
    return {key: value for key, value in body.items() if key != name}


# (case id, change to a valid iSheet body, field the response must name)
ISHEET_MISMATCHES: list[tuple[str, Callable[[Body], Body], str]] = [
    ("miscased-field", lambda body: _renamed(body, "isheetID", "isheetId"), "isheetId"),
    ("missing-rule-id", lambda body: _without(body, "ruleId"), "ruleId"),
    ("string-site-id", lambda body: {**body, "siteId": "3"}, "siteId"),
    (
        "file-operation",
        lambda body: {**body, "operation": "ACTIVITY_DOCUMENT_ADDED"},
        "operation",
    ),
    ("file-field", lambda body: {**body, "parentFolderId": 9}, "parentFolderId"),
    (
        "unknown-module",
        lambda body: {**body, "moduleAlias": "SITE_MODULE_WIKI"},
        "moduleAlias",
    ),
    ("version-2", lambda body: {**body, "workflowVersion": "V2"}, "workflowVersion"),
    ("column-names", lambda body: {**body, "columnIds": ["status"]}, "columnIds"),
]


@pytest.mark.parametrize(
    ("change", "field"),
    [(change, field) for _, change, field in ISHEET_MISMATCHES],
    ids=[case for case, _, _ in ISHEET_MISMATCHES],
)
def test_trigger_mismatched_body_returns_400_naming_field(
    sandbox: SandboxServer,
    client: httpx.Client,
    isheet_body: Body,
    change: Callable[[Body], Body],
    field: str,
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json=change(isheet_body), headers=pa_headers()
    )
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(field in problem for problem in problems), problems


def test_apex_mismatched_body_returns_400_naming_field(
    sandbox: SandboxServer, client: httpx.Client, file_body: Body
) -> None:
    token = fetch_token(client, sandbox)
    response = client.post(
        sandbox.urls.apex_url(),
        json=_without(file_body, "documentExtension"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert any("documentExtension" in p for p in response.json()["problems"])


def test_body_problems_are_recorded(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: Body
) -> None:
    client.post(
        sandbox.urls.trigger_url(),
        json=_without(isheet_body, "ruleId"),
        headers=pa_headers(),
    )
    assert any("ruleId" in problem for problem in sandbox.deliveries()[0].problems)


def test_body_not_json_returns_400(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(),
        content=b"{not json",
        headers=pa_headers(**{"Content-Type": "application/json"}),
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["problems"][0]


def test_body_wrong_content_type_returns_400(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: Body
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(),
        data={"siteId": "3"},
        headers=pa_headers(),
    )
    assert response.status_code == 400
    assert "Content-Type" in response.json()["problems"][0]


def test_body_json_array_returns_400(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: Body
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json=[isheet_body], headers=pa_headers()
    )
    assert response.status_code == 400


def test_body_checked_after_authentication(
    sandbox: SandboxServer, client: httpx.Client
) -> None:
    response = client.post(
        sandbox.urls.trigger_url(), json={"bad": True}, headers=pa_headers("wrong")
    )
    assert response.status_code == 401


def test_body_over_limit_returns_400(
    sandbox: SandboxServer, client: httpx.Client, isheet_body: Body
) -> None:
    oversized = {**isheet_body, "padding": "x" * (1024 * 1024)}
    response = client.post(
        sandbox.urls.trigger_url(), json=oversized, headers=pa_headers()
    )
    assert response.status_code == 400
    assert "larger than" in response.json()["problems"][0]

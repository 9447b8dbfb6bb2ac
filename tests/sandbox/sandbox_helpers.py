"""Credentials and request helpers shared by the sandbox tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from hqsync.sandbox import SandboxConfig, SandboxServer

# Canary credentials: a test fails if any of them shows up in output or logs.
CANARY_PA_KEY = "canary-pa-key-5f2b9c41"
CANARY_PA_SIG = "canary-pa-sig-8d03e7aa"
CANARY_CLIENT_ID = "canary-client-id-19be62"
CANARY_CLIENT_SECRET = "canary-client-secret-c7a4d0"
CANARIES = (CANARY_PA_KEY, CANARY_PA_SIG, CANARY_CLIENT_ID, CANARY_CLIENT_SECRET)

StartSandbox = Callable[..., SandboxServer]


def canary_config(**settings: Any) -> SandboxConfig:
    """Return settings with canary credentials on a free loopback port."""
    values: dict[str, Any] = {
        "port": 0,
        "pa_key": CANARY_PA_KEY,
        "pa_sig": CANARY_PA_SIG,
        "sf_client_id": CANARY_CLIENT_ID,
        "sf_client_secret": CANARY_CLIENT_SECRET,
    }
    values.update(settings)
    return SandboxConfig(**values)


def pa_headers(key: str = CANARY_PA_KEY, **extra: str) -> dict[str, str]:
    """Return Power Automate request headers with a HighQ-Auth-Key."""
    return {"HighQ-Auth-Key": key, **extra}


def fetch_token(client: httpx.Client, sandbox: SandboxServer) -> str:
    """Fetch an access token with the canary client credentials."""
    response = client.post(
        sandbox.urls.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": CANARY_CLIENT_ID,
            "client_secret": CANARY_CLIENT_SECRET,
        },
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token

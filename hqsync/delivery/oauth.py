"""OAuth 2.0 client-credentials tokens, fetched over the guarded HTTP client.

Written on httpx rather than taken from authlib because authlib neither
fetches a token again after a 401 nor keeps a token that came without
``expires_in`` (Salesforce sends none). Tokens are cached per (token URL,
client id, scope) behind one asyncio lock each, so concurrent deliveries
fetch once. A token is refreshed :data:`REFRESH_MARGIN_SECONDS` before it
expires, and one without ``expires_in`` is used until a 401 drops it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from hqsync.config.urls import redact_url

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 60
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ClientCredentials:
    """The inputs of a client-credentials token request; ``repr`` hides the secret."""

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None
    auth_method: str  # client_secret_post | client_secret_basic

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """Return the key tokens are cached under: token URL, client id, scope."""
        return (self.token_url, self.client_id, self.scope or "")

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, scope={self.scope!r})"
        )


class TokenError(Exception):
    """The token endpoint did not return a usable access token."""

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass
class _CachedToken:
    value: str
    expires_at: datetime | None  # None: valid until a 401


class TokenCache:
    """Client-credentials tokens cached per (token URL, client id, scope)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], _CachedToken] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def get(
        self, credentials: ClientCredentials, client: httpx.AsyncClient
    ) -> str:
        """Return a valid access token, fetching one if none is cached or fresh."""
        key = credentials.cache_key
        cached = self._fresh(key)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._fresh(key)
            if cached is not None:
                return cached
            token = await self._fetch(credentials, client)
            self._tokens[key] = token
            return token.value

    def drop(self, credentials: ClientCredentials, rejected_token: str) -> None:
        """Forget a rejected token unless another task has already replaced it."""
        cached = self._tokens.get(credentials.cache_key)
        if cached is not None and cached.value == rejected_token:
            del self._tokens[credentials.cache_key]

    def _fresh(self, key: tuple[str, str, str]) -> str | None:
        cached = self._tokens.get(key)
        if cached is None:
            return None
        if cached.expires_at is not None and self._clock() >= cached.expires_at:
            return None
        return cached.value

    async def _fetch(
        self, credentials: ClientCredentials, client: httpx.AsyncClient
    ) -> _CachedToken:
        form = {"grant_type": "client_credentials"}
        if credentials.scope:
            form["scope"] = credentials.scope
        headers = {"Accept": "application/json"}
        if credentials.auth_method == "client_secret_basic":
            headers["Authorization"] = _basic_authorization(credentials)
        else:
            form["client_id"] = credentials.client_id
            form["client_secret"] = credentials.client_secret

        fetched_at = self._clock()
        payload = await _post_token_request(
            client, credentials.token_url, form, headers
        )
        token = _parse_token(payload)
        # The client id is not logged: it may come from a secret source.
        logger.info(
            "fetched OAuth2 token: token_url=%s expires_in=%s",
            redact_url(credentials.token_url),
            payload.get("expires_in"),
        )
        return _CachedToken(token, _expiry(fetched_at, payload.get("expires_in")))


def _basic_authorization(credentials: ClientCredentials) -> str:
    # RFC 6749 section 2.3.1: form-encode id and secret before base64; httpx's
    # BasicAuth skips that step, so a secret with ':' or '%' would break.
    client_id = quote(credentials.client_id, safe="")
    secret = quote(credentials.client_secret, safe="")
    pair = f"{client_id}:{secret}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


async def _post_token_request(
    client: httpx.AsyncClient, url: str, form: dict[str, str], headers: dict[str, str]
) -> dict[str, Any]:
    async with client.stream("POST", url, data=form, headers=headers) as response:
        content = bytearray()
        async for chunk in response.aiter_raw():
            content += chunk
            if len(content) > MAX_TOKEN_RESPONSE_BYTES:
                raise TokenError(
                    f"token endpoint response exceeds {MAX_TOKEN_RESPONSE_BYTES} bytes",
                    status=response.status_code,
                )
        status = response.status_code
    if status != 200:
        raise TokenError(
            f"token endpoint returned HTTP {status}{_oauth_error(bytes(content))}",
            status=status,
        )
    try:
        payload = httpx.Response(200, content=bytes(content)).json()
    except ValueError:
        raise TokenError("token endpoint returned a body that is not JSON") from None
    if not isinstance(payload, dict):
        raise TokenError("token endpoint returned JSON that is not an object")
    return payload


def _oauth_error(content: bytes) -> str:
    # RFC 6749 error codes such as invalid_client help; free text may echo input.
    try:
        payload = httpx.Response(200, content=content).json()
    except ValueError:
        return ""
    error = payload.get("error") if isinstance(payload, dict) else None
    return f" ({error})" if isinstance(error, str) and error.isascii() else ""


def _parse_token(payload: dict[str, Any]) -> str:
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError("token endpoint response has no access_token")
    token_type = payload.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenError(
            f"token endpoint returned token_type {token_type!r}, not Bearer"
        )
    return token


def _expiry(fetched_at: datetime, expires_in: object) -> datetime | None:
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        return None
    lifetime = float(expires_in)
    margin = min(REFRESH_MARGIN_SECONDS, lifetime / 10)
    return fetched_at + timedelta(seconds=lifetime - margin)

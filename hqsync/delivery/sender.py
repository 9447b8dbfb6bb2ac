"""One webhook attempt: POST the V1 body with auth and read a capped response.

The client is httpx's API over the ``httpx-aiohttp`` transport: on a 2-core
machine at 200 requests in flight, httpx's own transport reached about 110
requests/s against about 1,600 through aiohttp (see docs/benchmarks.md). The
aiohttp connector resolves through the SSRF guard, verifies TLS with the
instance's or service's CA bundle, ignores proxy variables and never follows
redirects.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from hqsync import __version__
from hqsync.delivery.oauth import ClientCredentials, TokenCache, TokenError
from hqsync.delivery.policy import RETRY_AFTER_STATUSES, Verdict, classify_status
from hqsync.delivery.redact import redact_headers, redact_url
from hqsync.delivery.ssrf import (
    AddressPolicy,
    BlockedAddressError,
    GuardedResolver,
    check_url_host,
)

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024
DELIVERY_ID_HEADER = "X-HighQ-Delivery-Id"
USER_AGENT = f"hqsync/{__version__}"


@dataclass(frozen=True)
class Target:
    """The URL, auth and trust settings of one delivery, built from the live service."""

    url: str  # the full URL, possibly signed: never logged or stored
    auth_type: str  # header | oauth2
    auth_key: str | None = None
    credentials: ClientCredentials | None = None
    ca_bundle: str | None = None
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        return f"Target(url={redact_url(self.url)!r}, auth_type={self.auth_type!r})"


@dataclass
class AttemptResult:
    """The result of one attempt, ready for the attempts table."""

    verdict: Verdict
    duration_ms: float
    http_status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    location: str | None = None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    retry_after: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """Describe the outcome in one line for the audit record's error message."""
        if self.error_class is not None:
            return f"{self.error_class}: {self.error_message}"
        text = f"HTTP {self.http_status}"
        if self.location is not None:
            text += f" redirect to {self.location} (redirects are not followed)"
        return text


def base_headers(delivery_id: str) -> dict[str, str]:
    """Return the headers every attempt of a delivery carries, auth aside."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_ID_HEADER: delivery_id,
        "Accept-Encoding": "identity",
    }


def auth_header_names(auth_type: str) -> dict[str, str]:
    """Return the redacted auth header a service type adds, for the audit record."""
    if auth_type == "oauth2":
        return {"Authorization": "Bearer REDACTED"}
    return {"HighQ-Auth-Key": "REDACTED"}


class HttpClients:
    """One guarded httpx client per CA bundle, shared by every delivery."""

    def __init__(self, policy: AddressPolicy, default_ca_bundle: str | None) -> None:
        self.policy = policy
        self._default_ca_bundle = default_ca_bundle
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._transports: dict[str | None, httpx.AsyncBaseTransport] = {}

    def get(self, ca_bundle: str | None) -> httpx.AsyncClient:
        """Return the client that verifies with the given bundle (or the default)."""
        bundle = ca_bundle or self._default_ca_bundle
        client = self._clients.get(bundle)
        if client is None:
            transport = self._make_transport(bundle)
            client = httpx.AsyncClient(
                transport=transport, follow_redirects=False, trust_env=False
            )
            self._transports[bundle] = transport
            self._clients[bundle] = client
        return client

    def transport(self, ca_bundle: str | None) -> httpx.AsyncBaseTransport:
        """Return the transport under :meth:`get`'s client for the same bundle."""
        self.get(ca_bundle)
        return self._transports[ca_bundle or self._default_ca_bundle]

    def _make_transport(self, ca_bundle: str | None) -> httpx.AsyncBaseTransport:
        context = ssl.create_default_context(cafile=ca_bundle)
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy),
            ssl=context,
            limit=0,  # the runner's semaphores limit concurrency
            ttl_dns_cache=10,
        )
        session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return AiohttpTransport(client=session)

    async def aclose(self) -> None:
        """Close every client and its connections."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._transports.clear()


class Sender:
    """Send attempts: auth, the POST, classification of the outcome."""

    def __init__(
        self, clients: HttpClients, tokens: TokenCache, clock: Callable[[], datetime]
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._clock = clock

    async def attempt(
        self, target: Target, delivery_id: str, body: bytes
    ) -> AttemptResult:
        """Make one attempt; return network, token and HTTP failures as results."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(target.timeout_seconds):
                result = await self._attempt(target, delivery_id, body)
        except TokenError as exc:
            result = _token_failure(exc)
        except TimeoutError:
            message = f"no complete response within {target.timeout_seconds:g} s"
            result = AttemptResult(
                "retry", 0, error_class="Timeout", error_message=message
            )
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            result = classify_exception(exc)
        result.duration_ms = (time.monotonic() - started) * 1000
        return result

    async def _attempt(
        self, target: Target, delivery_id: str, body: bytes
    ) -> AttemptResult:
        host = urlsplit(target.url).hostname or ""
        check_url_host(host, self._clients.policy)
        if target.credentials is not None:
            check_url_host(
                urlsplit(target.credentials.token_url).hostname or "",
                self._clients.policy,
            )
        client = self._clients.get(target.ca_bundle)
        transport = self._clients.transport(target.ca_bundle)
        headers = base_headers(delivery_id)

        if target.credentials is None:
            headers["HighQ-Auth-Key"] = target.auth_key or ""
            return await _post(transport, target.url, headers, body)

        token = await self._token(target.credentials, client)
        headers["Authorization"] = f"Bearer {token}"
        result = await _post(transport, target.url, headers, body)
        if result.http_status != 401:
            return result

        # The service rejected the token: fetch a fresh one once and resend.
        self._tokens.drop(target.credentials, token)
        token = await self._token(target.credentials, client)
        headers["Authorization"] = f"Bearer {token}"
        return await _post(transport, target.url, headers, body)

    async def _token(
        self, credentials: ClientCredentials, client: httpx.AsyncClient
    ) -> str:
        try:
            return await self._tokens.get(credentials, client)
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            cause = classify_exception(exc)
            raise TokenError(
                f"token request to {redact_url(credentials.token_url)} failed: "
                f"{cause.error_class}: {cause.error_message}",
                retryable=cause.verdict == "retry",
            ) from exc


def _token_failure(exc: TokenError) -> AttemptResult:
    # A token endpoint's 5xx or 429 may pass; its 4xx means wrong credentials.
    verdict: Verdict = "retry" if exc.retryable else "failed"
    if exc.status is not None:
        verdict = "retry" if classify_status(exc.status) == "retry" else "failed"
    return AttemptResult(verdict, 0, error_class="TokenError", error_message=str(exc))


async def _post(
    transport: httpx.AsyncBaseTransport,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> AttemptResult:
    # Straight to the transport: a webhook needs none of the client's cookie
    # jar, auth flow or redirect handling, and skipping them is measurably
    # cheaper at hundreds of requests per second (bench/delivery.py).
    request = httpx.Request("POST", url, content=body, headers=headers)
    response = await transport.handle_async_request(request)
    content = bytearray()
    try:
        # Read at most the cap and stop: an endless body is cut, not buffered.
        async for chunk in response.aiter_raw():
            content += chunk
            if len(content) >= MAX_RESPONSE_BYTES:
                del content[MAX_RESPONSE_BYTES:]
                break
    finally:
        await response.aclose()
    status = response.status_code
    response_headers = redact_headers(response.headers.multi_items())
    location = response.headers.get("location")

    result = AttemptResult(
        classify_status(status),
        0,
        http_status=status,
        response_headers=response_headers,
        response_body=content.decode("utf-8", errors="replace"),
    )
    if 300 <= status <= 399 and location is not None:
        result.location = redact_url(location)
    if status in RETRY_AFTER_STATUSES:
        result.retry_after = response.headers.get("retry-after")
    return result


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


_ERROR_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (BlockedAddressError, "BlockedAddress"),
    (ssl.SSLError, "TLSError"),
    (ssl.CertificateError, "TLSError"),
    (aiohttp.ClientSSLError, "TLSError"),
    (socket.gaierror, "DNSError"),
    (aiohttp.ClientConnectorDNSError, "DNSError"),
    (ConnectionRefusedError, "ConnectionRefused"),
    (ConnectionResetError, "ConnectionReset"),
    (aiohttp.ServerDisconnectedError, "ConnectionClosed"),
    (aiohttp.ClientPayloadError, "ConnectionClosed"),
    (TimeoutError, "Timeout"),
    (httpx.TimeoutException, "Timeout"),
    (httpx.UnsupportedProtocol, "InvalidURL"),
    (aiohttp.InvalidURL, "InvalidURL"),
)


def classify_exception(exc: BaseException) -> AttemptResult:
    """Map a transport error to an error class; a blocked or invalid URL fails."""
    chain = _causes(exc)
    for error_type, name in _ERROR_CLASSES:
        for cause in chain:
            if isinstance(cause, error_type):
                verdict: Verdict = (
                    "failed" if name in ("BlockedAddress", "InvalidURL") else "retry"
                )
                message = str(cause) or type(cause).__name__
                return AttemptResult(
                    verdict, 0, error_class=name, error_message=message
                )
    return AttemptResult(
        "retry",
        0,
        error_class="ConnectionError",
        error_message=str(exc) or type(exc).__name__,
    )

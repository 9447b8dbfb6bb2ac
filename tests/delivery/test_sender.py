from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from hqsync.delivery.oauth import ClientCredentials, TokenCache
from hqsync.delivery.sender import AttemptResult, HttpClients, Sender, Target
from hqsync.delivery.ssrf import AddressPolicy

from .helpers import CANARY_SECRET, MovableClock, Receiver, answer, sequence

LOOPBACK = AddressPolicy.from_strings(["127.0.0.0/8", "::1/128"])
BODY = b'{"moduleAlias":"SITE_MODULE_ISHEET"}'


def token_handler(tokens: list[str], expires_in: int | None = 3600) -> Any:
    async def handler(_request: web.Request) -> web.StreamResponse:
        payload: dict[str, Any] = {
            "access_token": tokens.pop(0) if len(tokens) > 1 else tokens[0],
            "token_type": "Bearer",
        }
        if expires_in is not None:
            payload["expires_in"] = expires_in
        return web.json_response(payload)

    return handler


def oauth_target(receiver: Receiver, method: str = "client_secret_post") -> Target:
    credentials = ClientCredentials(
        token_url=receiver.url("/token"),
        client_id="client-1",
        client_secret=CANARY_SECRET,
        scope="api",
        auth_method=method,
    )
    return Target(
        url=receiver.url("/hook"), auth_type="oauth2", credentials=credentials
    )


async def attempt(
    target: Target,
    *,
    policy: AddressPolicy = LOOPBACK,
    ca_bundle: str | None = None,
    tokens: TokenCache | None = None,
    repeat: int = 1,
) -> list[AttemptResult]:
    clock = MovableClock()
    clients = HttpClients(policy, ca_bundle)
    sender = Sender(clients, tokens or TokenCache(clock), clock)
    try:
        return [await sender.attempt(target, "delivery-1", BODY) for _ in range(repeat)]
    finally:
        await clients.aclose()


def unauthorized_then_ok() -> Any:
    return sequence(answer(401), answer(200))


def test_sender_refetches_token_after_401() -> None:
    async def scenario() -> tuple[Receiver, AttemptResult]:
        routes = {
            "/token": token_handler(["old", "new"]),
            "/hook": unauthorized_then_ok(),
        }
        async with Receiver(routes) as receiver:
            [result] = await attempt(oauth_target(receiver))
        return receiver, result

    receiver, result = asyncio.run(scenario())
    auths = [seen.headers["Authorization"] for seen in receiver.hits("/hook")]
    assert result.verdict == "success"
    assert auths == ["Bearer old", "Bearer new"]
    assert len(receiver.hits("/token")) == 2


def test_sender_token_post_sends_form_credentials() -> None:
    async def scenario() -> Receiver:
        routes = {"/token": token_handler(["t"]), "/hook": answer(202)}
        async with Receiver(routes) as receiver:
            await attempt(oauth_target(receiver))
        return receiver

    receiver = asyncio.run(scenario())
    form = receiver.hits("/token")[0].body.decode()
    assert "grant_type=client_credentials" in form
    assert f"client_secret={CANARY_SECRET}" in form
    assert "scope=api" in form


def test_sender_token_basic_sends_authorization() -> None:
    async def scenario() -> Receiver:
        routes = {"/token": token_handler(["t"]), "/hook": answer(202)}
        async with Receiver(routes) as receiver:
            await attempt(oauth_target(receiver, "client_secret_basic"))
        return receiver

    receiver = asyncio.run(scenario())
    request = receiver.hits("/token")[0]
    expected = base64.b64encode(f"client-1:{CANARY_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "client_secret" not in request.body.decode()


def test_sender_token_500_sends_nothing_unauthenticated() -> None:
    async def scenario() -> tuple[Receiver, AttemptResult]:
        routes = {"/token": answer(500), "/hook": answer(200)}
        async with Receiver(routes) as receiver:
            [result] = await attempt(oauth_target(receiver))
        return receiver, result

    receiver, result = asyncio.run(scenario())
    assert receiver.hits("/hook") == []
    assert result.error_class == "TokenError"
    assert result.verdict == "retry"
    assert CANARY_SECRET not in (result.error_message or "")


def test_sender_token_400_fails() -> None:
    async def scenario() -> AttemptResult:
        routes = {"/token": answer(400, body='{"error": "invalid_client"}')}
        async with Receiver(routes) as receiver:
            [result] = await attempt(oauth_target(receiver))
        return result

    result = asyncio.run(scenario())
    assert result.verdict == "failed"
    assert result.error_message is not None
    assert "invalid_client" in result.error_message


def test_sender_token_without_expires_in_is_reused() -> None:
    async def scenario() -> Receiver:
        routes = {"/token": token_handler(["t"], expires_in=None), "/hook": answer(200)}
        async with Receiver(routes) as receiver:
            await attempt(oauth_target(receiver), repeat=3)
        return receiver

    receiver = asyncio.run(scenario())
    assert len(receiver.hits("/token")) == 1
    assert len(receiver.hits("/hook")) == 3


def test_sender_concurrent_deliveries_fetch_token_once() -> None:
    async def slow_token(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.json_response({"access_token": "t", "expires_in": 3600})

    async def scenario() -> Receiver:
        routes = {"/token": slow_token, "/hook": answer(200)}
        async with Receiver(routes) as receiver:
            clock = MovableClock()
            clients = HttpClients(LOOPBACK, None)
            sender = Sender(clients, TokenCache(clock), clock)
            target = oauth_target(receiver)
            await asyncio.gather(
                *(sender.attempt(target, "d", BODY) for _ in range(10))
            )
            await clients.aclose()
        return receiver

    receiver = asyncio.run(scenario())
    assert len(receiver.hits("/token")) == 1


def test_token_cache_refreshes_before_expiry() -> None:
    async def scenario() -> Receiver:
        routes = {
            "/token": token_handler(["a", "b"], expires_in=600),
            "/hook": answer(200),
        }
        async with Receiver(routes) as receiver:
            clock = MovableClock()
            tokens = TokenCache(clock)
            clients = HttpClients(LOOPBACK, None)
            sender = Sender(clients, tokens, clock)
            target = oauth_target(receiver)
            await sender.attempt(target, "d", BODY)
            clock.advance(545)  # inside the 60 s refresh margin of a 600 s token
            await sender.attempt(target, "d", BODY)
            await clients.aclose()
        return receiver

    receiver = asyncio.run(scenario())
    auths = [seen.headers["Authorization"] for seen in receiver.hits("/hook")]
    assert auths == ["Bearer a", "Bearer b"]


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def tls_receiver(ca: trustme.CA) -> Receiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return Receiver({"/hook": answer(200)}, ssl_context=context)


def test_sender_self_signed_fails_until_ca_configured(
    certificate_authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(bundle))

    async def scenario() -> tuple[AttemptResult, AttemptResult]:
        async with tls_receiver(certificate_authority) as receiver:
            target = Target(url=receiver.url("/hook"), auth_type="header", auth_key="k")
            [untrusted] = await attempt(target)
            [trusted] = await attempt(target, ca_bundle=str(bundle))
        return untrusted, trusted

    untrusted, trusted = asyncio.run(scenario())
    assert untrusted.error_class == "TLSError"
    assert untrusted.verdict == "retry"
    assert trusted.verdict == "success"


def test_sender_blocks_metadata_address_literal() -> None:
    target = Target(
        url="http://169.254.169.254/latest", auth_type="header", auth_key="k"
    )
    [result] = asyncio.run(attempt(target, policy=AddressPolicy()))
    assert result.error_class == "BlockedAddress"
    assert result.verdict == "failed"


def test_sender_blocks_decimal_loopback() -> None:
    target = Target(url="http://2130706433:1/", auth_type="header", auth_key="k")
    [result] = asyncio.run(attempt(target, policy=AddressPolicy()))
    assert result.error_class == "BlockedAddress"


def test_sender_blocks_token_endpoint_on_loopback() -> None:
    credentials = ClientCredentials(
        token_url="http://localhost:1/token",
        client_id="c",
        client_secret=CANARY_SECRET,
        scope=None,
        auth_method="client_secret_post",
    )
    target = Target(
        url="https://hook.invalid/", auth_type="oauth2", credentials=credentials
    )
    [result] = asyncio.run(attempt(target, policy=AddressPolicy()))
    assert result.error_class == "TokenError"
    assert "SSRF guard" in (result.error_message or "")


def test_sender_dns_error_retries() -> None:
    target = Target(
        url="http://no-such-host.invalid/", auth_type="header", auth_key="k"
    )
    [result] = asyncio.run(attempt(target))
    assert result.error_class == "DNSError"
    assert result.verdict == "retry"


def test_sender_timeout_retries() -> None:
    async def stall(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.Response(status=200)

    async def scenario() -> AttemptResult:
        async with Receiver({"/hook": stall}) as receiver:
            target = Target(
                url=receiver.url("/hook"),
                auth_type="header",
                auth_key="k",
                timeout_seconds=0.2,
            )
            [result] = await attempt(target)
        return result

    result = asyncio.run(scenario())
    assert result.error_class == "Timeout"
    assert result.verdict == "retry"


def test_token_cache_key_ignores_secret() -> None:
    first = ClientCredentials("u", "c", "s1", None, "client_secret_post")
    second = ClientCredentials("u", "c", "s2", None, "client_secret_post")
    assert first.cache_key == second.cache_key
    assert "s1" not in repr(first)


def test_token_fetch_log_omits_client_id(caplog: pytest.LogCaptureFixture) -> None:
    # A client id may come from a secret source, so the log line leaves it out.
    async def scenario() -> None:
        routes = {"/token": token_handler(["t"]), "/hook": answer(200)}
        async with Receiver(routes) as receiver:
            await attempt(oauth_target(receiver))

    with caplog.at_level(logging.DEBUG, logger="hqsync.delivery"):
        asyncio.run(scenario())

    messages = [record.getMessage() for record in caplog.records]
    assert any("fetched OAuth2 token" in message for message in messages)
    assert not any("client-1" in message for message in messages)

"""Test helpers: a scripted receiver on 127.0.0.1, a movable clock, seeded stores."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from hqsync.config.models import DeliverySettings, Instance
from hqsync.store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CANARY_KEY = "canary-key-7f3a9c-never-logged"
CANARY_SECRET = "canary-secret-4b2e81-never-logged"


class MovableClock:
    """A clock tests move forward by hand, starting at the real current time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Seen:
    """One request the receiver got."""

    path: str
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 whose responses each test scripts per path."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    ssl_context: ssl.SSLContext | None = None
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[Seen]:
        return [request for request in self.seen if request.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.path, CIMultiDict(request.headers), body))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def answer(
    status: int, body: str = "", headers: dict[str, str] | None = None
) -> Handler:
    """Return a handler that always returns the same response."""

    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=body, headers=headers)

    return handler


def sequence(*handlers: Handler) -> Handler:
    """Return a handler that responds with each handler in turn, then the last."""
    remaining = list(handlers)

    async def handler(request: web.Request) -> web.StreamResponse:
        current = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return await current(request)

    return handler


def local_instance(**delivery: Any) -> Instance:
    """Return an instance that may reach 127.0.0.1 over plain http."""
    return Instance(
        allow_http=True,
        allow_networks=["127.0.0.0/8", "::1/128"],
        base_url="https://hq.example.invalid",
        timezone="Europe/London",
        delivery=DeliverySettings(**delivery),
    )


def seed_store(
    store: Store,
    *,
    url: str,
    auth: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    services: int = 1,
) -> dict[str, int]:
    """Create a site, iSheet, columns, folder, services and one rule per service."""
    auth = auth or {"type": "header"}
    secrets = {"key": CANARY_KEY} if secrets is None else secrets
    ids: dict[str, int] = {}
    with store.begin() as conn:
        ids["site"] = store.insert_resource(
            conn, kind="site", scope="", name="litigation", spec={"title": "Lit"}
        )
        ids["isheet"] = store.insert_resource(
            conn,
            kind="isheet",
            scope="litigation",
            name="matters",
            spec={},
            parent_id=ids["site"],
        )
        for position, column in enumerate(("matter_id", "status")):
            ids[column] = store.insert_resource(
                conn,
                kind="column",
                scope="litigation/matters",
                name=column,
                spec={"type": "text", "position": position},
                parent_id=ids["isheet"],
            )
        ids["folder"] = store.insert_resource(
            conn,
            kind="folder",
            scope="litigation",
            name="/Contracts",
            spec={},
            parent_id=ids["site"],
        )
        for number in range(services):
            name = "svc" if number == 0 else f"svc{number}"
            service_url = url if number == 0 else f"{url}{number}"
            ids[name] = store.insert_resource(
                conn,
                kind="service",
                scope="",
                name=name,
                spec={"url": service_url, "status": "active", "auth": auth},
                secrets=secrets,
            )
            ids[f"rule-{name}"] = store.insert_resource(
                conn,
                kind="rule",
                scope="litigation",
                name=f"closed-to-{name}",
                parent_id=ids["site"],
                spec={
                    "enabled": True,
                    "trigger": {"type": "isheet_item_updated", "isheet": "matters"},
                    "conditions": [
                        {
                            "column": "status",
                            "operator": "changed_to",
                            "value": "Closed",
                        }
                    ],
                    "actions": [
                        {
                            "type": "send_to_external_service",
                            "service": name,
                            "columns": ["matter_id", "status"],
                        },
                        {"type": "internal", "name": "send_alert", "params": {}},
                    ],
                    "rule_type": "Internal and External",
                },
            )
    return ids


def closed_event(number: int, occurred_at: datetime | None = None) -> dict[str, Any]:
    """Return an iSheet update event that fires the seeded rule."""
    moment = occurred_at or datetime.now(UTC)
    return {
        "id": f"evt-{number}",
        "type": "isheet_item_updated",
        "site": "litigation",
        "isheet": "matters",
        "item_id": 1000 + number,
        "occurred_at": moment.isoformat(),
        "author": 77,
        "values": {"status": "Closed"},
        "previous_values": {"status": "Open"},
    }


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until a condition holds, polling; fail the test after the timeout."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)

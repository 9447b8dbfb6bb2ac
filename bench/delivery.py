"""Benchmark the delivery runner against bare aiohttp and httpx client loops.

A receiver process on 127.0.0.1 responds to every POST with 202 after 50 ms and
records when each arrived. In one run this script measures:

1. throughput: N events pushed at once into a fresh store, then ``Runner``
   with 200 deliveries in flight until the queue is empty; then bare loops
   posting the same N bodies at the same concurrency with aiohttp's client,
   with httpx over the httpx-aiohttp transport the runner uses, and with
   httpx over its own transport.
2. latency: events pushed at a steady rate (100/s by default) while a runner
   is polling, and the time from each event's push to its POST's arrival.

Traffic goes only to 127.0.0.1. Not part of the tests.

    .venv/bin/python bench/delivery.py --events 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import sqlalchemy as sa
from aiohttp import web
from cryptography.fernet import Fernet
from httpx_aiohttp import AiohttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import push_events
from hqsync.delivery.runner import Runner, RunnerSettings
from hqsync.store import Store, open_store
from hqsync.store.schema import audit_records
from tests.delivery.helpers import closed_event, local_instance, seed_store

DELAY_SECONDS = 0.05
CONCURRENCY = 200


# The receiver ------------------------------------------------------------------


def _receiver_main(port_pipe: Any) -> None:
    arrivals: list[tuple[float, str]] = []

    async def hook(request: web.Request) -> web.Response:
        arrivals.append((time.time(), request.headers.get("X-HighQ-Delivery-Id", "")))
        await request.read()
        await asyncio.sleep(DELAY_SECONDS)
        return web.Response(status=202)

    async def dump(_request: web.Request) -> web.Response:
        data = list(arrivals)
        arrivals.clear()
        return web.json_response(data)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_get("/_dump", dump)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_pipe.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


async def fetch_arrivals(base: str) -> list[tuple[float, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/_dump") as response,
    ):
        return [(float(at), str(delivery)) for at, delivery in await response.json()]


# Bare client loops -------------------------------------------------------------


async def run_pool(count: int, post: Callable[[int], Awaitable[None]]) -> float:
    next_index = iter(range(count))
    started = time.perf_counter()

    async def worker() -> None:
        for index in next_index:
            await post(index)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def bare_aiohttp(url: str, bodies: list[bytes]) -> float:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(index: int) -> None:
            headers = {"Content-Type": "application/json"}
            async with session.post(url, data=bodies[index], headers=headers) as r:
                await r.read()

        return await run_pool(len(bodies), post)


async def bare_httpx(url: str, bodies: list[bytes]) -> float:
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY
    )
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def post(index: int) -> None:
            headers = {"Content-Type": "application/json"}
            response = await client.post(url, content=bodies[index], headers=headers)
            response.raise_for_status()

        return await run_pool(len(bodies), post)


async def bare_httpx_aiohttp(url: str, bodies: list[bytes]) -> float:
    transport = AiohttpTransport(
        limits=httpx.Limits(max_connections=CONCURRENCY), trust_env=False
    )
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:

        async def post(index: int) -> None:
            headers = {"Content-Type": "application/json"}
            response = await client.post(url, content=bodies[index], headers=headers)
            response.raise_for_status()

        return await run_pool(len(bodies), post)


# The runner ----------------------------------------------------------------------


def fresh_store(store_url: str | None, url: str, folder: Path) -> Store:
    store = open_store(store_url or f"sqlite:///{folder}/bench.db")
    with store.begin() as conn:
        for table in ("attempts", "audit_records", "events", "resources"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    seed_store(store, url=url)
    return store


def push(store: Store, first: int, count: int) -> None:
    now = datetime.now(UTC)
    events = [validate_event(closed_event(n, now)) for n in range(first, first + count)]
    push_events(store, local_instance(), events, lambda: datetime.now(UTC))


def settings() -> RunnerSettings:
    return RunnerSettings(concurrency=CONCURRENCY, per_service_concurrency=CONCURRENCY)


def pushed_at(store: Store) -> dict[str, float]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_records.c.delivery_id, audit_records.c.created_at).where(
                audit_records.c.delivery_id.is_not(None)
            )
        ).all()
    return {
        delivery_id: created.replace(tzinfo=created.tzinfo or UTC).timestamp()
        for delivery_id, created in rows
    }


def bodies_of(store: Store) -> list[bytes]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_records.c.request_body).where(
                audit_records.c.delivery_id.is_not(None)
            )
        ).scalars()
        return [json.dumps(body, separators=(",", ":")).encode() for body in rows]


async def runner_throughput(store: Store, count: int) -> float:
    push(store, 0, count)
    runner = Runner(store, local_instance(), settings=settings())
    started = time.perf_counter()
    await runner.run("until_idle")
    elapsed = time.perf_counter() - started
    assert runner.stats.succeeded == count, runner.stats
    return elapsed


async def runner_latency(
    store: Store, base: str, rate: float, seconds: float
) -> list[float]:
    await fetch_arrivals(base)
    runner = Runner(store, local_instance(), settings=settings())
    task = asyncio.create_task(runner.run("forever"))
    total = int(rate * seconds)

    def pusher() -> None:
        started = time.perf_counter()
        for number in range(total):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            push(store, 1_000_000 + number, 1)

    await asyncio.to_thread(pusher)
    while runner.stats.succeeded < total:
        await asyncio.sleep(0.05)
    runner.stop()
    await task
    arrivals = await fetch_arrivals(base)
    pushed = pushed_at(store)
    return [
        (at - pushed[delivery]) * 1000
        for at, delivery in arrivals
        if delivery in pushed
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main_async(
    args: argparse.Namespace, base: str, scratch: str
) -> dict[str, Any]:
    url = f"{base}/hook"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        store = fresh_store(args.store, url, Path(folder))
        seconds = await runner_throughput(store, args.events)
        bodies = bodies_of(store)
        arrivals = await fetch_arrivals(base)
        pushed = pushed_at(store)
        lat = [(at - pushed[d]) * 1000 for at, d in arrivals if d in pushed]
        results["runner"] = {
            "per_second": args.events / seconds,
            "p50_ms": percentile(lat, 0.5),
            "p99_ms": percentile(lat, 0.99),
        }
        store.close()

        seconds = await bare_aiohttp(url, bodies)
        results["aiohttp"] = {"per_second": len(bodies) / seconds}
        await fetch_arrivals(base)
        seconds = await bare_httpx_aiohttp(url, bodies)
        results["httpx-aiohttp"] = {"per_second": len(bodies) / seconds}
        await fetch_arrivals(base)
        seconds = await bare_httpx(url, bodies)
        results["httpx"] = {"per_second": len(bodies) / seconds}
        await fetch_arrivals(base)

    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        store = fresh_store(args.store, url, Path(folder))
        latencies = await runner_latency(store, base, args.rate, args.seconds)
        results["steady"] = {
            "rate": args.rate,
            "events": len(latencies),
            "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99),
        }
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=2000, help="events per throughput run"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="events/s in the latency run"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of the latency run"
    )
    parser.add_argument(
        "--store", default=None, help="store URL (default: a temporary SQLite file)"
    )
    args = parser.parse_args()
    # One master key for the whole run, because a --store database outlives a
    # phase's temporary folder.
    os.environ["HQSYNC_MASTER_KEY"] = Fernet.generate_key().decode()

    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.Process(
        target=_receiver_main, args=(child,), daemon=True
    )
    receiver.start()
    try:
        port = parent.recv()
        with tempfile.TemporaryDirectory() as scratch:
            base = f"http://127.0.0.1:{port}"
            results = asyncio.run(main_async(args, base, scratch))
    finally:
        receiver.terminate()
        receiver.join()

    report(args, results)


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    runner, bare, steady = results["runner"], results["aiohttp"], results["steady"]
    store = args.store or "SQLite (temporary file)"
    delay_ms = DELAY_SECONDS * 1000
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    print(f"Python {platform.python_version()}, store: {store}")
    print(f"{args.events} events, {CONCURRENCY} in flight, 202 after {delay_ms:.0f} ms")
    print(f"{'client':<22}{'deliveries/s':>14}{'vs aiohttp':>12}")
    for name in ("runner", "aiohttp", "httpx-aiohttp", "httpx"):
        rate = results[name]["per_second"]
        print(f"{name:<22}{rate:>14.0f}{rate / bare['per_second']:>11.2f}x")
    print(
        f"runner event-to-POST, all {args.events} queued at once: "
        f"p50 {runner['p50_ms']:.0f} ms, p99 {runner['p99_ms']:.0f} ms"
    )
    print(
        f"runner event-to-POST at {steady['rate']:.0f} events/s "
        f"({steady['events']} events): "
        f"p50 {steady['p50_ms']:.1f} ms, p99 {steady['p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()

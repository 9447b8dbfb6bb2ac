"""Benchmark deliveries per second with 1, 2 and 4 runner processes on PostgreSQL.

A receiver process on 127.0.0.1 responds to every POST with 202 after 50 ms. For
each setup (PostgreSQL with 1, 2 and 4 ``hqsync run`` processes, SQLite with
1) the script makes a fresh store, starts the runners, warms them up with a
small batch, then pushes N events at once and times from the push's commit
until every delivery is recorded as a success. A bare aiohttp loop posting the
same N bodies at the same concurrency (200) to the same receiver is the
baseline, measured in the same run.

Traffic goes only to 127.0.0.1. Not part of the tests.

    HQSYNC_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/scaleout.py --events 4000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import push_events
from hqsync.store import Store, open_store
from hqsync.store.schema import audit_records
from tests.delivery.helpers import closed_event, local_instance, seed_store

DELAY_SECONDS = 0.05
CONCURRENCY = 200
WARM_UP_EVENTS = 200
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _receiver_main(port_pipe: Any) -> None:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(DELAY_SECONDS)
        return web.Response(status=202)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port_pipe.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


@contextmanager
def postgres_database(base: str) -> Iterator[str]:
    """Create a database for one setup on the loopback server and drop it after."""
    name = f"hqsync_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def write_config(folder: Path, store_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hqsync.yaml").write_text(
        "default_instance: local\n"
        "instances:\n"
        "  local:\n"
        f"    store: {store_url}\n"
        "    allow_http: true\n"
        "    allow_networks: [127.0.0.0/8]\n"
        "    delivery:\n"
        f"      concurrency: {CONCURRENCY}\n"
        "      per_service_concurrency: 10000\n"
    )
    return folder


def push(store: Store, first: int, count: int) -> None:
    now = datetime.now(UTC)
    events = [validate_event(closed_event(n, now)) for n in range(first, first + count)]
    push_events(store, local_instance(), events, lambda: datetime.now(UTC))


def succeeded(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    audit_records.c.delivery_id.is_not(None),
                    audit_records.c.status == "success",
                )
            ).scalar_one()
        )


def wait_for_successes(store: Store, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while succeeded(store) < count:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"timed out: {succeeded(store)} of {count} deliveries succeeded "
                f"within {timeout:g} s"
            )
        time.sleep(0.05)


def bodies_of(store: Store) -> list[bytes]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(audit_records.c.request_body).where(
                audit_records.c.delivery_id.is_not(None)
            )
        ).scalars()
        return [json.dumps(body, separators=(",", ":")).encode() for body in rows]


def set_due(store: Store, after_id: int, when: datetime) -> None:
    """Make every delivery with an id above ``after_id`` due at ``when``."""
    with store.begin() as connection:
        connection.execute(
            sa.update(audit_records)
            .where(audit_records.c.id > after_id)
            .values(next_attempt_at=when)
        )


def last_id(store: Store) -> int:
    with store.engine.connect() as connection:
        value = connection.execute(sa.select(sa.func.max(audit_records.c.id)))
        return int(value.scalar_one() or 0)


def measure_runners(store_url: str, runners: int, events: int, url: str) -> float:
    """Return deliveries per second of ``runners`` processes on a fresh store."""
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder) / "configs", store_url)
        store = open_store(store_url)
        seed_store(store, url=url)
        # Pushing takes longer than delivering, so the measured batch is pushed
        # first, held back, and made due at once when the runners are warm.
        push(store, 0, WARM_UP_EVENTS)
        warm = last_id(store)
        push(store, WARM_UP_EVENTS, events)
        set_due(store, warm, datetime(2999, 1, 1, tzinfo=UTC))
        command = [sys.executable, "-m", "hqsync", "--config-dir", str(config), "run"]
        processes = [
            subprocess.Popen(command, stderr=subprocess.DEVNULL) for _ in range(runners)
        ]
        try:
            wait_for_successes(store, WARM_UP_EVENTS)
            started = time.perf_counter()
            set_due(store, warm, datetime.now(UTC))
            wait_for_successes(store, WARM_UP_EVENTS + events)
            elapsed = time.perf_counter() - started
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
            store.close()
    return events / elapsed


async def bare_aiohttp(url: str, bodies: list[bytes]) -> float:
    """Return requests per second of a bare aiohttp loop at the same concurrency."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    remaining = iter(bodies)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body in remaining:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(bodies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HQSYNC_TEST_POSTGRES_URL"),
        help="a PostgreSQL server on 127.0.0.1 (default: $HQSYNC_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    if not args.postgres_url:
        raise SystemExit("set --postgres-url or HQSYNC_TEST_POSTGRES_URL")
    host = sa.make_url(args.postgres_url).host
    if host not in LOOPBACK:
        raise SystemExit(f"invalid --postgres-url host {host!r}: use 127.0.0.1")
    # Runner processes and this script open the same stores, so they share a key.
    os.environ["HQSYNC_MASTER_KEY"] = Fernet.generate_key().decode()

    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.Process(target=_receiver_main, args=(child,))
    receiver.daemon = True
    receiver.start()
    url = f"http://127.0.0.1:{parent.recv()}/hook"

    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        sqlite_url = f"sqlite:///{folder}/bench.db"
        results.append(
            ("SQLite, 1 runner", measure_runners(sqlite_url, 1, args.events, url))
        )
        with open_store(sqlite_url) as store:
            bodies = bodies_of(store)[: args.events]
    for count in args.runners:
        with postgres_database(args.postgres_url) as store_url:
            rate = measure_runners(store_url, count, args.events, url)
        plural = "runner" if count == 1 else "runners"
        results.append((f"PostgreSQL, {count} {plural}", rate))
    bare = asyncio.run(bare_aiohttp(url, bodies))
    receiver.terminate()
    report(args, bare, results)


def report(
    args: argparse.Namespace, bare: float, results: list[tuple[str, float]]
) -> None:
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"events: {args.events}, receiver delay {DELAY_SECONDS * 1000:.0f} ms, "
        f"{CONCURRENCY} in flight per runner\n"
    )
    print("| setup | deliveries/s | vs bare aiohttp |")
    print("|---|---|---|")
    print(f"| bare aiohttp loop | {bare:,.0f} | 1.00 |")
    for name, rate in results:
        print(f"| {name} | {rate:,.0f} | {rate / bare:.2f} |")


if __name__ == "__main__":
    main()

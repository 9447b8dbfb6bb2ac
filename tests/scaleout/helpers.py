"""Helpers for scale-out tests: runner processes, a counting receiver, a TCP proxy."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from aiohttp import web

from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import push_events
from hqsync.delivery.sender import DELIVERY_ID_HEADER
from hqsync.store import Store
from hqsync.store.schema import attempts, audit_records
from tests.delivery.helpers import closed_event, local_instance


def write_config(
    folder: Path,
    store_url: str,
    *,
    lease_seconds: int,
    concurrency: int = 50,
    per_service: int = 200,
) -> Path:
    """Write a project whose instance delivers to 127.0.0.1 from ``store_url``."""
    folder.mkdir(parents=True)
    (folder / "hqsync.yaml").write_text(
        "default_instance: local\n"
        "instances:\n"
        "  local:\n"
        f"    store: {store_url}\n"
        "    allow_http: true\n"
        "    allow_networks: [127.0.0.0/8]\n"
        "    delivery:\n"
        f"      concurrency: {concurrency}\n"
        f"      per_service_concurrency: {per_service}\n"
        f"      lease_seconds: {lease_seconds}\n"
        "      timeout_seconds: 30\n"
    )
    return folder


@dataclass
class RunnerProcess:
    """An ``hqsync run`` process whose stderr goes to a file."""

    process: asyncio.subprocess.Process
    log: Path
    _stream: IO[bytes]

    @property
    def pid_mark(self) -> str:
        """Return the part of its runner id that names its process."""
        return f":{self.process.pid}:"

    async def stop(self) -> int:
        """Send SIGTERM and return the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 60)
        self._stream.close()
        return code

    async def kill(self) -> None:
        """Send SIGKILL and wait until the process is gone."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self._stream.close()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def runner_group(
    config: Path, folder: Path, count: int
) -> AsyncIterator[list[RunnerProcess]]:
    """Start ``count`` runners; kill any still running when the block exits."""
    runners: list[RunnerProcess] = []
    try:
        for number in range(count):
            runners.append(await start_runner(config, folder / f"runner-{number}.log"))
        yield list(runners)
    finally:
        for runner in runners:
            if runner.process.returncode is None:
                await runner.kill()


async def start_runner(config: Path, log: Path) -> RunnerProcess:
    """Start ``hqsync run`` (until SIGTERM) on the project in ``config``."""
    stream = log.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from hqsync.cli import main; main()",
        "--config-dir",
        str(config),
        "-v",  # logs "runner started", which wait_until_logged looks for
        "run",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stream,
    )
    return RunnerProcess(process, log, stream)


@dataclass
class CountingReceiver:
    """An HTTP server on 127.0.0.1 that responds 202 after a delay and counts.

    It keeps every delivery id and body it got, in order, and the highest
    number of requests it was handling at once on each path. While
    ``released`` is clear, requests wait before they get a response.
    """

    delay: float
    ids: list[str] = field(default_factory=list)
    bodies: dict[str, list[bytes]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    active: collections.Counter[str] = field(default_factory=collections.Counter)
    peak: collections.Counter[str] = field(default_factory=collections.Counter)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self.released.set()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def duplicates(self) -> dict[str, int]:
        """Return delivery ids seen more than once, with how often."""
        counts = collections.Counter(self.ids)
        return {key: count for key, count in counts.items() if count > 1}

    async def _hook(self, request: web.Request) -> web.Response:
        self.active[request.path] += 1
        self.peak[request.path] = max(
            self.peak[request.path], self.active[request.path]
        )
        try:
            body = await request.read()
            delivery_id = request.headers.get(DELIVERY_ID_HEADER, "")
            self.ids.append(delivery_id)
            self.bodies[delivery_id].append(body)
            await asyncio.sleep(self.delay)
            await self.released.wait()
        finally:
            self.active[request.path] -= 1
        return web.Response(status=202)

    async def __aenter__(self) -> CountingReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class TcpProxy:
    """Forward 127.0.0.1:port to a target; cut every connection on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.connections = 0

    async def start(self) -> None:
        """Listen on the proxy's port (a new one the first time)."""
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening, so connecting is refused, and reset every connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer),
            self._pipe(up_reader, writer),
            return_exceptions=True,
        )
        self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(OSError):
                writer.close()


def push(store: Store, count: int) -> None:
    """Push ``count`` events that each fire one rule per seeded service."""
    now = datetime.now(UTC)
    events = [validate_event(closed_event(n, now)) for n in range(count)]
    push_events(store, local_instance(), events, lambda: now)


def deliveries(store: Store) -> list[dict[str, Any]]:
    """Return every delivery record with its status and lease."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                audit_records.c.id,
                audit_records.c.delivery_id,
                audit_records.c.status,
                audit_records.c.lease_owner,
            ).where(audit_records.c.delivery_id.is_not(None))
        ).all()
    return [dict(row._mapping) for row in rows]


def attempts_by_record(store: Store) -> dict[int, list[tuple[str, str]]]:
    """Return each record's attempts as (runner, outcome), in order."""
    found: dict[int, list[tuple[str, str]]] = collections.defaultdict(list)
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                attempts.c.record_id, attempts.c.runner, attempts.c.outcome
            ).order_by(attempts.c.record_id, attempts.c.number)
        ).all()
    for record_id, runner, outcome in rows:
        found[record_id].append((runner, outcome))
    return found


async def wait_until_delivered(store: Store, count: int, timeout: float) -> None:
    """Wait until ``count`` deliveries succeeded; fail the test after ``timeout``."""

    def succeeded() -> int:
        return sum(r["status"] == "success" for r in deliveries(store))

    async with asyncio.timeout(timeout):
        while await asyncio.to_thread(succeeded) < count:
            await asyncio.sleep(0.2)


async def wait_until_logged(runners: list[RunnerProcess], text: str) -> None:
    """Wait until every runner has logged ``text``, for at most 60 s."""
    async with asyncio.timeout(60):
        while not all(text in runner.stderr() for runner in runners):
            await asyncio.sleep(0.05)


async def wait_for_requests(receiver: CountingReceiver, count: int) -> None:
    """Wait until the receiver got ``count`` requests, for at most 60 s."""
    async with asyncio.timeout(60):
        while len(receiver.ids) < count:
            await asyncio.sleep(0.01)

"""The runner as a process: SIGKILL loses nothing, SIGTERM finishes in-flight work."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from cryptography.fernet import Fernet

from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import push_events
from hqsync.delivery.runner import Runner, RunnerSettings
from hqsync.delivery.sender import DELIVERY_ID_HEADER
from hqsync.store import Store, open_store
from hqsync.store.schema import audit_records

from .helpers import Receiver, closed_event, local_instance, seed_store, wait_for

pytestmark = pytest.mark.slow

LEASE_SECONDS = 5
EVENTS = 20


def write_config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "configs"
    config.mkdir()
    (config / "hqsync.yaml").write_text(
        "default_instance: local\n"
        "instances:\n"
        "  local:\n"
        f"    store: {store_url}\n"
        "    allow_http: true\n"
        "    allow_networks: [127.0.0.0/8]\n"
        "    delivery:\n"
        f"      lease_seconds: {LEASE_SECONDS}\n"
        "      timeout_seconds: 60\n"
    )
    return config


async def start_runner(config: Path) -> asyncio.subprocess.Process:
    code = "from hqsync.cli import main; main()"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "--config-dir",
        str(config),
        "run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def records(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_records).where(audit_records.c.delivery_id.is_not(None))
        ).all()
    return [dict(row._mapping) for row in rows]


def prepare(tmp_path: Path, url: str, store_url: str = "") -> tuple[Path, Store]:
    store_url = store_url or f"sqlite:///{tmp_path}/hqsync.db"
    config = write_config(tmp_path, store_url)
    store = open_store(store_url)
    seed_store(store, url=url)
    events = [validate_event(closed_event(n)) for n in range(EVENTS)]
    push_events(store, local_instance(), events, lambda: datetime.now(UTC))
    return config, store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hqsync.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(autouse=True)
def _shared_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner process and the test open the same store, so they share a key.
    monkeypatch.setenv("HQSYNC_MASTER_KEY", Fernet.generate_key().decode())


def test_runner_sigkill_loses_nothing(tmp_path: Path, store_url: str) -> None:
    hold = asyncio.Event()

    async def held(_request: web.Request) -> web.StreamResponse:
        await hold.wait()
        return web.Response(status=200)

    async def scenario() -> tuple[Receiver, Store]:
        async with Receiver({"/hook": held}) as receiver:
            config, store = prepare(tmp_path, receiver.url("/hook"), store_url)
            process = await start_runner(config)
            await wait_for(lambda: len(receiver.seen) == EVENTS, timeout=30)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            hold.set()

            # Every delivery is still pending under the dead runner's lease.
            assert {r["status"] for r in records(store)} == {"pending"}
            assert all(r["lease_owner"] for r in records(store))

            later = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS + 1)
            runner = Runner(
                store, local_instance(), settings=RunnerSettings(), clock=lambda: later
            )
            await runner.run("until_idle")
        return receiver, store

    receiver, store = asyncio.run(scenario())
    final = records(store)
    store.close()
    sent = [seen.headers[DELIVERY_ID_HEADER] for seen in receiver.seen]
    assert {r["status"] for r in final} == {"success"}
    assert set(sent) == {r["delivery_id"] for r in final}
    assert len(sent) == 2 * EVENTS  # each once before the kill, once after


def test_runner_sigterm_finishes_in_flight(tmp_path: Path) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.5)
        return web.Response(status=202)

    async def scenario() -> tuple[int, bytes, Store]:
        async with Receiver({"/hook": slow}) as receiver:
            config, store = prepare(tmp_path, receiver.url("/hook"))
            process = await start_runner(config)
            await wait_for(lambda: len(receiver.seen) == EVENTS, timeout=30)
            process.send_signal(signal.SIGTERM)
            _out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, err, store

    code, err, store = asyncio.run(scenario())
    final = records(store)
    store.close()
    assert code == 0, err.decode()
    assert {r["status"] for r in final} == {"success"}
    assert {r["lease_owner"] for r in final} == {None}

"""Many ``hqsync run`` processes on one PostgreSQL store, as on many hosts.

Each test starts runner processes against a fresh database and a receiver on
127.0.0.1, and checks the audit records and the receiver's log afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hqsync.store import Store, open_store
from hqsync.store.schema import resources
from tests.delivery.helpers import seed_store

from .helpers import (
    CountingReceiver,
    RunnerProcess,
    TcpProxy,
    attempts_by_record,
    deliveries,
    push,
    runner_group,
    wait_for_requests,
    wait_until_delivered,
    wait_until_logged,
    write_config,
)

pytestmark = pytest.mark.slow

EVENTS = 2000


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    opened = open_store(postgres_url)
    try:
        yield opened
    finally:
        opened.close()


def runners(
    tmp_path: Path, store_url: str, count: int, *, lease_seconds: int = 30
) -> contextlib.AbstractAsyncContextManager[list[RunnerProcess]]:
    config = write_config(tmp_path / "configs", store_url, lease_seconds=lease_seconds)
    return runner_group(config, tmp_path, count)


async def stop_all(runners: list[RunnerProcess]) -> list[int]:
    return [await runner.stop() for runner in runners]


def test_four_runners_deliver_each_once(tmp_path: Path, store: Store) -> None:
    async def scenario() -> tuple[CountingReceiver, list[int]]:
        async with CountingReceiver(delay=0.005) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            async with runners(tmp_path, str(store.url), 4) as group:
                # Pushed once all are up, so no runner starts with the queue
                # to itself.
                await wait_until_logged(group, "runner started")
                await asyncio.to_thread(push, store, EVENTS)
                await wait_until_delivered(store, EVENTS, timeout=60)
                codes = await stop_all(group)
        return receiver, codes

    receiver, codes = asyncio.run(scenario())
    final = deliveries(store)
    runners_used = {
        runner for tried in attempts_by_record(store).values() for runner, _ in tried
    }
    assert codes == [0, 0, 0, 0]
    assert {r["status"] for r in final} == {"success"}
    assert sorted(receiver.ids) == sorted(r["delivery_id"] for r in final)
    assert len(runners_used) > 1  # the work was shared, not done by one


async def busiest(store: Store, runners: list[RunnerProcess]) -> RunnerProcess:
    """Return the runner holding the most leases right now."""
    owners = [
        r["lease_owner"] or "" for r in await asyncio.to_thread(deliveries, store)
    ]
    return max(runners, key=lambda p: sum(p.pid_mark in owner for owner in owners))


def test_sigkill_duplicates_only_in_flight(tmp_path: Path, store: Store) -> None:
    async def scenario() -> tuple[CountingReceiver, set[int], str]:
        async with CountingReceiver(delay=0.02) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            async with runners(tmp_path, str(store.url), 4, lease_seconds=5) as group:
                await wait_until_logged(group, "runner started")
                await asyncio.to_thread(push, store, EVENTS)
                await wait_for_requests(receiver, EVENTS // 3)
                # Holding the responses leaves every runner with requests the
                # receiver has seen and the runner has not recorded.
                receiver.released.clear()
                await asyncio.sleep(0.5)
                victim = await busiest(store, group)
                group.remove(victim)
                await victim.kill()
                receiver.released.set()
                # The dead runner's leases stand until they expire: what it
                # held now is what it had claimed and not confirmed.
                leased_at_kill = {
                    r["id"]
                    for r in await asyncio.to_thread(deliveries, store)
                    if r["lease_owner"] and victim.pid_mark in r["lease_owner"]
                }
                await wait_until_delivered(store, EVENTS, timeout=60)
                await stop_all(group)
        return receiver, leased_at_kill, victim.pid_mark

    receiver, leased_at_kill, victim = asyncio.run(scenario())
    final = deliveries(store)
    tried = attempts_by_record(store)
    by_id = {r["delivery_id"]: r["id"] for r in final}
    duplicated = receiver.duplicates()
    assert leased_at_kill  # the kill caught deliveries in flight
    assert duplicated  # some of them had reached the receiver
    assert {r["status"] for r in final} == {"success"}
    assert set(receiver.ids) == set(by_id)  # nothing lost
    assert {by_id[d] for d in duplicated} <= leased_at_kill
    assert set(duplicated.values()) <= {2}
    # Both requests of a duplicate carried the delivery's original id and body.
    assert all(len(set(receiver.bodies[d])) == 1 for d in duplicated)
    # The killed runner confirmed none of them; another runner did, once.
    assert all(
        not any(victim in runner for runner, _ in tried[i]) for i in leased_at_kill
    )
    assert all(
        [outcome for _, outcome in tried[i]] == ["success"] for i in leased_at_kill
    )


def set_service_limit(store: Store, name: str, limit: int) -> None:
    of_service = sa.and_(resources.c.kind == "service", resources.c.name == name)
    with store.begin() as connection:
        spec = connection.execute(
            sa.select(resources.c.spec).where(of_service)
        ).scalar_one()
        connection.execute(
            sa.update(resources)
            .where(of_service)
            .values(spec={**spec, "max_concurrency": limit})
        )


def test_service_limits_hold_across_runners(tmp_path: Path, store: Store) -> None:
    limits = {"/hook": 4, "/hook1": 7}

    async def scenario() -> CountingReceiver:
        async with CountingReceiver(delay=0.03) as receiver:
            seed_store(store, url=receiver.url("/hook"), services=2)
            set_service_limit(store, "svc", limits["/hook"])
            set_service_limit(store, "svc1", limits["/hook1"])
            push(store, 300)
            async with runners(tmp_path, str(store.url), 3) as group:
                await wait_until_delivered(store, 600, timeout=60)
                await stop_all(group)
        return receiver

    receiver = asyncio.run(scenario())
    assert receiver.peak["/hook"] <= limits["/hook"]
    assert receiver.peak["/hook1"] <= limits["/hook1"]
    # With three runners of 50 each, both services had more work than room.
    assert dict(receiver.peak) == limits


def test_connection_cut_runners_recover(tmp_path: Path, store: Store) -> None:
    async def scenario() -> tuple[CountingReceiver, set[int], list[RunnerProcess]]:
        proxy = TcpProxy(store.url.host or "127.0.0.1", store.url.port or 5432)
        await proxy.start()
        proxied = store.url.set(drivername="postgresql", port=proxy.port)
        async with CountingReceiver(delay=0.01) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            url = proxied.render_as_string(hide_password=False)
            async with runners(tmp_path, url, 2) as group:
                await wait_until_logged(group, "runner started")
                await asyncio.to_thread(push, store, EVENTS // 2)
                await wait_for_requests(receiver, EVENTS // 6)
                await proxy.cut()
                in_flight = {
                    r["id"]
                    for r in await asyncio.to_thread(deliveries, store)
                    if r["lease_owner"] and r["status"] == "pending"
                }
                await asyncio.sleep(3)
                await proxy.start()
                await wait_until_delivered(store, EVENTS // 2, timeout=60)
                # A runner whose work others finished still claims once more
                # (finding nothing) before it is stopped.
                await wait_until_logged(group, "store reachable again")
                await stop_all(group)
        return receiver, in_flight, group

    receiver, in_flight, group = asyncio.run(scenario())
    final = deliveries(store)
    tried = attempts_by_record(store)
    by_id = {r["delivery_id"]: r["id"] for r in final}
    logs = [runner.stderr() for runner in group]
    assert {r["status"] for r in final} == {"success"}
    assert set(receiver.ids) == set(by_id)
    assert {by_id[d] for d in receiver.duplicates()} <= in_flight
    # Each delivery was confirmed once: one attempt, however often it was sent.
    assert {len(tried[r["id"]]) for r in final} == {1}
    assert all("cannot claim deliveries, retrying in" in log for log in logs), logs
    # Backing off bounds the log: a few lines per runner for a 3 s outage.
    errors = [
        [line for line in log.splitlines() if line.startswith("ERROR")] for log in logs
    ]
    assert all(len(lines) <= 20 for lines in errors), errors
    assert not any("Traceback" in log for log in logs), logs

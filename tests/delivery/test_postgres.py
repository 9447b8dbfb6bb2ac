"""Key runner cases on PostgreSQL: claims with SKIP LOCKED, leases, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import push_events
from hqsync.delivery.queue import claim_due
from hqsync.delivery.runner import Runner, RunnerSettings
from hqsync.delivery.sender import DELIVERY_ID_HEADER
from hqsync.store import Store, open_store
from hqsync.store.schema import audit_records

from .helpers import (
    MovableClock,
    Receiver,
    answer,
    closed_event,
    local_instance,
    seed_store,
    sequence,
)


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(postgres_url, key_file=tmp_path / "k.key")
    try:
        yield opened
    finally:
        opened.close()


def push(store: Store, count: int, clock: Any) -> None:
    events = [validate_event(closed_event(n, clock())) for n in range(count)]
    push_events(store, local_instance(), events, clock)


def statuses(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(audit_records.c.status).where(
                    audit_records.c.delivery_id.is_not(None)
                )
            ).scalars()
        )


def test_postgres_two_runners_deliver_each_once(pg_store: Store) -> None:
    async def scenario() -> Receiver:
        async with Receiver({"/hook": answer(202)}) as receiver:
            seed_store(pg_store, url=receiver.url("/hook"))
            push(pg_store, 200, lambda: datetime.now(UTC))
            settings = RunnerSettings(concurrency=20, per_service_concurrency=20)
            runners = [
                Runner(pg_store, local_instance(), settings=settings) for _ in range(2)
            ]
            await asyncio.gather(*(runner.run("until_idle") for runner in runners))
        return receiver

    receiver = asyncio.run(scenario())
    sent = [seen.headers[DELIVERY_ID_HEADER] for seen in receiver.seen]
    assert len(sent) == 200
    assert len(set(sent)) == 200
    assert set(statuses(pg_store)) == {"success"}


def test_postgres_claims_skip_leased_rows(pg_store: Store) -> None:
    seed_store(pg_store, url="http://127.0.0.1:9/hook")
    now = datetime.now(UTC)
    push(pg_store, 10, lambda: now)
    arguments: dict[str, Any] = {
        "now": now,
        "lease_seconds": 30,
        "limit": 6,
        "service_limits": {},
        "default_service_limit": 100,
    }
    first = claim_due(pg_store, runner_id="a", **arguments)
    second = claim_due(pg_store, runner_id="b", **arguments)
    later = claim_due(
        pg_store, runner_id="c", **{**arguments, "now": now + timedelta(seconds=31)}
    )
    assert len(first) == 6
    assert len(second) == 4
    assert not {c.record_id for c in first} & {c.record_id for c in second}
    assert len(later) == 6  # expired leases are claimed again


def test_postgres_per_service_limit_counts_all_runners(pg_store: Store) -> None:
    seed_store(pg_store, url="http://127.0.0.1:9/hook")
    now = datetime.now(UTC)
    push(pg_store, 10, lambda: now)
    arguments: dict[str, Any] = {
        "now": now,
        "lease_seconds": 30,
        "limit": 10,
        "service_limits": {},
        "default_service_limit": 3,
    }
    first = claim_due(pg_store, runner_id="a", **arguments)
    second = claim_due(pg_store, runner_id="b", **arguments)
    assert len(first) == 3
    assert second == []


def test_postgres_retry_then_success(pg_store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> None:
        async with Receiver({"/hook": sequence(answer(503), answer(200))}) as receiver:
            seed_store(pg_store, url=receiver.url("/hook"))
            push(pg_store, 1, clock)
            runner = Runner(
                pg_store, local_instance(), settings=RunnerSettings(), clock=clock
            )
            await runner.run("until_idle")
            clock.advance(13)
            runner = Runner(
                pg_store, local_instance(), settings=RunnerSettings(), clock=clock
            )
            await runner.run("until_idle")

    asyncio.run(scenario())
    assert statuses(pg_store) == ["success"]

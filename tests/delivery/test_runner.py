from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from hqsync.config.models import Instance
from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import PushReport, push_events
from hqsync.delivery.payload import validate_v1_body
from hqsync.delivery.runner import Runner, RunnerSettings, RunStats
from hqsync.delivery.sender import DELIVERY_ID_HEADER
from hqsync.store import Store
from hqsync.store.schema import attempts, audit_records

from .helpers import (
    CANARY_KEY,
    MovableClock,
    Receiver,
    answer,
    closed_event,
    free_port,
    local_instance,
    seed_store,
    sequence,
)


def push(
    store: Store, instance: Instance, clock: MovableClock, count: int = 1
) -> PushReport:
    events = [validate_event(closed_event(n, clock.now)) for n in range(count)]
    return push_events(store, instance, events, clock)


async def run(
    store: Store, instance: Instance, clock: MovableClock, mode: str = "until_idle"
) -> RunStats:
    settings = RunnerSettings(
        concurrency=20, per_service_concurrency=10, lease_seconds=30
    )
    runner = Runner(store, instance, settings=settings, clock=clock)
    return await runner.run(mode)  # type: ignore[arg-type]


def deliveries(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_records)
            .where(audit_records.c.action_type == "send_to_external_service")
            .order_by(audit_records.c.id)
        ).all()
    return [dict(row._mapping) for row in rows]


def attempt_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(attempts).order_by(attempts.c.id)).all()
    return [dict(row._mapping) for row in rows]


def deliver_with(
    store: Store, handler: Any, clock: MovableClock | None = None
) -> Receiver:
    clock = clock or MovableClock()

    async def scenario() -> Receiver:
        async with Receiver({"/hook": handler}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = local_instance()
            push(store, instance, clock)
            await run(store, instance, clock)
        return receiver

    return asyncio.run(scenario())


def test_runner_success_statuses(store: Store) -> None:
    for status in (200, 201, 202):
        with store.begin() as conn:
            conn.execute(sa.delete(audit_records))
            conn.execute(sa.text("DELETE FROM events"))
            conn.execute(sa.text("DELETE FROM resources"))
        deliver_with(store, answer(status))
        assert deliveries(store)[0]["status"] == "success", status


def test_runner_sends_v1_body_and_headers(store: Store) -> None:
    receiver = deliver_with(store, answer(202))
    request = receiver.hits("/hook")[0]
    record = deliveries(store)[0]
    assert validate_v1_body(request.json()) == []
    assert request.json() == record["request_body"]
    assert request.headers["HighQ-Auth-Key"] == CANARY_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("hqsync/")
    assert request.headers[DELIVERY_ID_HEADER] == record["delivery_id"]


def test_runner_204_fails(store: Store) -> None:
    deliver_with(store, answer(204))
    record = deliveries(store)[0]
    assert record["status"] == "failed"
    assert record["error_message"] == "HTTP 204"


def test_runner_audit_has_no_secret(store: Store) -> None:
    deliver_with(store, answer(500, body="boom"))
    with store.engine.connect() as conn:
        dump = repr(conn.execute(sa.select(audit_records)).all())
        dump += repr(conn.execute(sa.select(attempts)).all())
    assert CANARY_KEY not in dump


def test_runner_retries_500_then_succeeds(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> Receiver:
        async with Receiver({"/hook": sequence(answer(500), answer(200))}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = local_instance()
            push(store, instance, clock)
            await run(store, instance, clock)
            first = deliveries(store)[0]
            assert first["status"] == "pending"
            clock.advance(13)  # past the first backoff step, 10 s +- 20 %
            await run(store, instance, clock)
        return receiver

    receiver = asyncio.run(scenario())
    ids = {seen.headers[DELIVERY_ID_HEADER] for seen in receiver.hits("/hook")}
    record = deliveries(store)[0]
    assert record["status"] == "success"
    assert record["attempt_count"] == 2
    assert ids == {record["delivery_id"]}
    assert [row["outcome"] for row in attempt_rows(store)] == ["retry", "success"]


def test_runner_honours_retry_after(store: Store) -> None:
    clock = MovableClock()
    limited = answer(429, headers={"Retry-After": "120"})

    async def scenario() -> Receiver:
        async with Receiver({"/hook": sequence(limited, answer(200))}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = local_instance()
            push(store, instance, clock)
            await run(store, instance, clock)
            clock.advance(119)
            await run(store, instance, clock)
            assert len(receiver.hits("/hook")) == 1
            clock.advance(1)
            await run(store, instance, clock)
        return receiver

    receiver = asyncio.run(scenario())
    assert len(receiver.hits("/hook")) == 2
    assert deliveries(store)[0]["status"] == "success"


def test_runner_does_not_follow_redirects(store: Store) -> None:
    for status in (301, 302, 307, 308):
        with store.begin() as conn:
            conn.execute(sa.delete(audit_records))
            conn.execute(sa.text("DELETE FROM events"))
            conn.execute(sa.text("DELETE FROM resources"))
        target = "/moved?sig=secret-signature"
        receiver = deliver_with(store, answer(status, headers={"Location": target}))
        record = deliveries(store)[0]
        attempt = attempt_rows(store)[-1]
        assert receiver.hits("/moved") == [], status
        assert record["status"] == "failed", status
        assert attempt["location"] == "/moved?sig=REDACTED", status


def test_runner_window_closes_into_failed(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> None:
        async with Receiver({"/hook": answer(503, body="down")}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = local_instance()
            push(store, instance, clock)
            for _ in range(12):
                await run(store, instance, clock)
                clock.advance(1900)

    asyncio.run(scenario())
    record = deliveries(store)[0]
    assert record["status"] == "failed"
    assert record["error_message"] == "HTTP 503"
    assert record["finished_at"] is not None


def test_runner_endless_body_is_capped(store: Store) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 16384
        for _ in range(10_000):  # 160 MB if the reader never stopped
            await response.write(chunk)
        return response

    deliver_with(store, endless)
    attempt = attempt_rows(store)[0]
    assert attempt["outcome"] == "success"
    assert len(attempt["response_body"]) == 64 * 1024


def test_runner_connection_refused_retries(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> None:
        seed_store(store, url=f"http://127.0.0.1:{free_port()}/hook")
        instance = local_instance()
        push(store, instance, clock)
        await run(store, instance, clock)

    asyncio.run(scenario())
    attempt = attempt_rows(store)[0]
    assert attempt["error_class"] == "ConnectionRefused"
    assert attempt["outcome"] == "retry"


def test_runner_connection_reset_retries(store: Store) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        import socket
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response(status=200)

    deliver_with(store, reset)
    attempt = attempt_rows(store)[0]
    assert attempt["outcome"] == "retry"
    assert attempt["error_class"] in ("ConnectionReset", "ConnectionClosed")


def test_runner_loopback_refused_without_allow(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> Receiver:
        async with Receiver({"/hook": answer(200)}) as receiver:
            seed_store(
                store, url=receiver.url("/hook").replace("127.0.0.1", "localhost")
            )
            instance = Instance(allow_http=True)
            push(store, instance, clock)
            await run(store, instance, clock)
        return receiver

    receiver = asyncio.run(scenario())
    attempt = attempt_rows(store)[0]
    assert receiver.seen == []
    assert attempt["error_class"] == "BlockedAddress"
    assert deliveries(store)[0]["status"] == "failed"


def test_runner_slow_service_does_not_delay_fast(store: Store) -> None:
    clock = MovableClock()
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.StreamResponse:
        await release.wait()  # stands for a 60 s endpoint, ended by the test
        return web.Response(status=200)

    async def scenario() -> Receiver:
        async with Receiver({"/hook": slow, "/hook1": answer(200)}) as receiver:
            seed_store(store, url=receiver.url("/hook"), services=2)
            instance = local_instance(per_service_concurrency=2)
            push(store, instance, clock, count=6)
            settings = RunnerSettings(concurrency=4, per_service_concurrency=2)
            runner = Runner(store, instance, settings=settings, clock=clock)
            task = asyncio.create_task(runner.run("forever"))
            async with asyncio.timeout(20):
                while len(receiver.hits("/hook1")) < 6:
                    await asyncio.sleep(0.01)
            assert len(receiver.hits("/hook")) == 2
            release.set()
            runner.stop()
            await task
        return receiver

    asyncio.run(scenario())
    statuses = {
        record["service_name"]: record["status"] for record in deliveries(store)
    }
    assert statuses["svc1"] == "success"


def test_runner_logs_one_record_per_attempt(store: Store, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="hqsync.delivery.runner")
    deliver_with(store, answer(202))
    records = [
        r for r in caplog.records if getattr(r, "event", "") == "delivery_attempt"
    ]
    assert len(records) == 1
    assert records[0].status == 202  # type: ignore[attr-defined]
    assert CANARY_KEY not in caplog.text


def test_runner_recovers_from_store_errors(store: Store, monkeypatch: Any) -> None:
    from hqsync.delivery import queue, runner
    from hqsync.errors import StoreError

    monkeypatch.setattr(runner, "DB_RETRY_SECONDS", (0.01, 0.02))
    real_claim = queue.claim_due
    failures = [StoreError("connection lost"), StoreError("connection lost")]

    def flaky_claim(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim_due", flaky_claim)
    deliver_with(store, answer(202))
    assert failures == []
    assert deliveries(store)[0]["status"] == "success"


def test_runner_until_idle_gives_up_on_store(store: Store, monkeypatch: Any) -> None:
    import pytest

    from hqsync.delivery import queue, runner
    from hqsync.errors import DeliveryError, StoreError

    monkeypatch.setattr(runner, "DB_RETRY_SECONDS", (0.01,))

    def broken_claim(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreError("connection lost")

    monkeypatch.setattr(queue, "claim_due", broken_claim)
    with pytest.raises(DeliveryError, match="connection lost"):
        deliver_with(store, answer(202))


def test_runner_metrics_count_attempts(store: Store) -> None:
    from prometheus_client import generate_latest

    from hqsync.delivery.metrics import RunnerMetrics

    metrics = RunnerMetrics()
    clock = MovableClock()

    async def scenario() -> None:
        async with Receiver({"/hook": answer(503)}) as receiver:
            seed_store(store, url=receiver.url("/hook?sig=secret-signature"))
            instance = local_instance()
            push(store, instance, clock)
            settings = RunnerSettings(concurrency=5)
            runner = Runner(
                store, instance, settings=settings, clock=clock, metrics=metrics
            )
            await runner.run("until_idle")

    asyncio.run(scenario())
    text = generate_latest(metrics.registry).decode()
    assert (
        'hqsync_delivery_attempts_total{outcome="retry",rule="closed-to-svc",'
        'service="svc",site="litigation"} 1.0' in text
    )
    assert 'status_class="5xx"' in text
    assert "hqsync_delivery_attempt_duration_seconds_bucket" in text
    assert "secret-signature" not in text
    assert "127.0.0.1" not in text


def test_runner_once_takes_one_batch(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> RunStats:
        async with Receiver({"/hook": answer(200)}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = local_instance()
            push(store, instance, clock, count=5)
            settings = RunnerSettings(concurrency=2, per_service_concurrency=2)
            runner = Runner(store, instance, settings=settings, clock=clock)
            return await runner.run("once")

    stats = asyncio.run(scenario())
    statuses = [record["status"] for record in deliveries(store)]
    assert stats.attempts == 2
    assert statuses.count("pending") == 3


def test_runner_missing_ca_bundle_fails_clearly(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> None:
        async with Receiver({"/hook": answer(200)}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = local_instance().model_copy(
                update={"ca_bundle": "/nonexistent/ca.pem"}
            )
            push(store, instance, clock)
            await run(store, instance, clock)

    asyncio.run(scenario())
    record = deliveries(store)[0]
    assert record["status"] == "failed"
    assert record["error_message"] == (
        "service svc: CA bundle /nonexistent/ca.pem not found"
    )


def test_runner_rejects_http_without_allow_http(store: Store) -> None:
    clock = MovableClock()

    async def scenario() -> Receiver:
        async with Receiver({"/hook": answer(200)}) as receiver:
            seed_store(store, url=receiver.url("/hook"))
            instance = Instance(allow_networks=["127.0.0.0/8"])
            push(store, instance, clock)
            await run(store, instance, clock)
        return receiver

    receiver = asyncio.run(scenario())
    record = deliveries(store)[0]
    assert receiver.seen == []
    assert record["status"] == "failed"
    assert "scheme 'http' is not allowed" in record["error_message"]

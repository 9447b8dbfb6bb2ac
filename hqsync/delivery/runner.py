"""The delivery runner: claim due deliveries, send them, record every attempt.

One asyncio loop claims work with a lease (:mod:`hqsync.delivery.queue`),
sends up to ``concurrency`` deliveries at once, renews the leases of those in
flight by heartbeat, and writes attempts in batches. Time comes from an
injectable clock, so tests move time forward instead of sleeping.

On :meth:`Runner.stop` it takes no more work, lets in-flight deliveries
finish for up to the grace period, releases the leases of any it had to
cancel, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hqsync.config.models import Instance
from hqsync.delivery import queue
from hqsync.delivery.metrics import RunnerMetrics
from hqsync.delivery.oauth import TokenCache
from hqsync.delivery.policy import decide, parse_retry_after
from hqsync.delivery.queue import AttemptRecord, Claim
from hqsync.delivery.sender import AttemptResult, HttpClients, Sender
from hqsync.delivery.ssrf import AddressPolicy
from hqsync.delivery.targets import ServiceTarget, TargetError, build_target
from hqsync.errors import DeliveryError, StoreError
from hqsync.store import LiveResource, Store

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
Mode = Literal["forever", "once", "until_idle"]
Clock = Callable[[], datetime]

SERVICE_REFRESH_SECONDS = 5.0
STATS_SECONDS = 5.0
MIN_POLL_SECONDS = 0.005
WRITE_BATCH_MAX = 500
DB_RETRY_SECONDS = (0.5, 1, 2, 5, 10, 30)


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def new_runner_id() -> str:
    """Return an id naming this runner process in leases and attempts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunnerSettings:
    """How much the runner does at once and how it waits."""

    concurrency: int = 200
    per_service_concurrency: int = 50
    lease_seconds: float = 60.0
    poll_seconds: float = 0.02  # the maximum wait between polls when idle
    grace_seconds: float = 30.0  # how long stop() lets in-flight work finish

    @classmethod
    def from_instance(
        cls, instance: Instance, concurrency: int | None
    ) -> RunnerSettings:
        """Take the instance's delivery settings, with an optional override."""
        delivery = instance.delivery
        return cls(
            concurrency=concurrency or delivery.concurrency,
            per_service_concurrency=delivery.per_service_concurrency,
            lease_seconds=float(delivery.lease_seconds),
            grace_seconds=delivery.timeout_seconds,
        )


@dataclass
class RunStats:
    """Counts of what this runner did, for the progress line and tests."""

    attempts: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    in_flight: int = 0
    lost_leases: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class Runner:
    """Deliver due webhooks from one store until stopped or idle."""

    def __init__(
        self,
        store: Store,
        instance: Instance,
        *,
        settings: RunnerSettings,
        clock: Clock = utc_now,
        runner_id: str | None = None,
        metrics: RunnerMetrics | None = None,
        base_dir: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.instance = instance
        self.settings = settings
        self.clock = clock
        self.runner_id = runner_id or new_runner_id()
        self.metrics = metrics or RunnerMetrics()
        self.stats = RunStats()
        self._base_dir = base_dir
        self._rng = rng or random.Random()
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Deliveries whose request is under way; the rest of _in_flight wait
        # only for their attempt to be written and hold no connection.
        self._sending: set[int] = set()
        self._settled: set[int] = set()
        self._services: dict[int, LiveResource] = {}
        self._services_loaded = float("-inf")
        self._targets: dict[int, tuple[int, ServiceTarget]] = {}
        self._min_batch = max(1, settings.concurrency // 8)
        self._store_failures = 0
        self._writer = _AttemptWriter(store, self.runner_id, self._stopping, self._rng)

    def stop(self) -> None:
        """Stop taking work; :meth:`run` returns once in-flight work is settled."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self, mode: Mode = "forever") -> RunStats:
        """Deliver until stopped (``forever``), idle, or after one batch (``once``)."""
        # A long-running runner keeps retrying attempt writes through an outage;
        # --once and --until-idle give up and report it.
        self._writer.persistent = mode == "forever"
        policy = AddressPolicy.from_strings(self.instance.allow_networks)
        clients = HttpClients(policy, None)
        self._sender = Sender(clients, TokenCache(self.clock), self.clock)
        helpers = [
            asyncio.create_task(self._writer.run()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._report_queue()),
        ]
        logger.info(
            "runner started: id=%s concurrency=%d",
            self.runner_id,
            self.settings.concurrency,
            extra={"event": "runner_start", "runner": self.runner_id},
        )
        try:
            await self._loop(mode)
        finally:
            await self._settle_in_flight()
            await self._writer.close()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await clients.aclose()
            logger.info(
                "runner stopped: id=%s attempts=%d",
                self.runner_id,
                self.stats.attempts,
                extra={"event": "runner_stop", "runner": self.runner_id},
            )
        return self.stats

    async def _loop(self, mode: Mode) -> None:
        wait = MIN_POLL_SECONDS
        while not self._stopping.is_set():
            claimed = await self._claim(mode)
            if claimed is None:
                continue
            claims = claimed
            for claim in claims:
                task = asyncio.create_task(self._deliver(claim))
                self._in_flight[claim.record_id] = task
                self._sending.add(claim.record_id)
                task.add_done_callback(functools.partial(self._done, claim.record_id))
            self.stats.in_flight = len(self._in_flight)
            self.metrics.in_flight.set(len(self._in_flight))

            if mode == "once":
                await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
                return
            if mode == "until_idle" and not claims and not self._in_flight:
                return

            # Poll quickly while work arrives, more slowly while the queue is empty.
            wait = (
                MIN_POLL_SECONDS
                if claims
                else min(wait * 2, self.settings.poll_seconds)
            )
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)

    def _done(self, record_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(record_id, None)
        self._sending.discard(record_id)
        self.stats.in_flight = len(self._in_flight)
        self.metrics.in_flight.set(len(self._in_flight))
        self._wakeup.set()

    async def _claim(self, mode: Mode) -> list[Claim] | None:
        """Claim due work; return None when the store could not be reached."""
        free = self.settings.concurrency - len(self._sending)
        # Under load, claim in batches: a claim per finished delivery would
        # spend the store's write lock on one row at a time.
        if free <= 0 or (self._sending and free < self._min_batch):
            return []
        try:
            claims = await self._claim_from_store(free)
        except (StoreError, SQLAlchemyError) as exc:
            self._store_failures += 1
            if mode != "forever" and self._store_failures > len(DB_RETRY_SECONDS):
                raise DeliveryError(f"cannot claim deliveries: {exc}") from exc
            delay = retry_delay(self._store_failures, self._rng)
            logger.error(
                "cannot claim deliveries, retrying in %.1f s: %s",
                delay,
                describe(exc),
                extra={"event": "claim_error", "runner": self.runner_id},
            )
            await self._pause(delay)
            return None
        if self._store_failures:
            logger.warning(
                "store reachable again after %d failed claims",
                self._store_failures,
                extra={"event": "claim_recovered", "runner": self.runner_id},
            )
            self._store_failures = 0
        return claims

    async def _claim_from_store(self, free: int) -> list[Claim]:
        await self._refresh_services()
        limits = {
            service_id: int(
                service.spec.get("max_concurrency")
                or self.settings.per_service_concurrency
            )
            for service_id, service in self._services.items()
        }
        return await _store_call(
            queue.claim_due,
            self.store,
            runner_id=self.runner_id,
            now=self.clock(),
            lease_seconds=self.settings.lease_seconds,
            limit=free,
            service_limits=limits,
            default_service_limit=self.settings.per_service_concurrency,
            settled=frozenset(self._settled),
        )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _refresh_services(self) -> None:
        if time.monotonic() - self._services_loaded < SERVICE_REFRESH_SECONDS:
            return
        from hqsync.delivery.targets import load_services

        self._services = await _store_call(load_services, self.store)
        self._services_loaded = time.monotonic()

    async def _deliver(self, claim: Claim) -> None:
        try:
            await self._deliver_claim(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug here must not kill the runner; the lease lapses and another
            # attempt follows.
            logger.exception(
                "delivery %s raised an unexpected error",
                claim.delivery_id,
                extra={"event": "delivery_error", "delivery_id": claim.delivery_id},
            )

    async def _deliver_claim(self, claim: Claim) -> None:
        now = self.clock()
        if now >= claim.window_closes_at:
            message = (
                f"confirmation window closed at {claim.window_closes_at.isoformat()}"
            )
            await self._fail(claim, message, now)
            return
        try:
            service = self._target(claim)
        except TargetError as exc:
            await self._fail(claim, str(exc), now)
            return

        body = json.dumps(claim.request_body, separators=(",", ":")).encode()
        result = await self._sender.attempt(service.target, claim.delivery_id, body)
        finished = self.clock()
        decision = decide(
            result.verdict,
            failed_attempts=claim.attempt_count + 1,
            now=finished,
            window_closes_at=claim.window_closes_at,
            retry_after=parse_retry_after(result.retry_after, finished),
            rng=self._rng,
        )
        record = _attempt_record(
            claim, now, result, decision.outcome, decision.next_attempt_at
        )
        self._sending.discard(claim.record_id)
        self._settled.add(claim.record_id)
        self._wakeup.set()
        try:
            lost = await self._writer.write(record)
        finally:
            self._settled.discard(claim.record_id)
        self._count(claim, record, result, lost)
        self._wakeup.set()  # its lease is gone, so the service has room again

    def _target(self, claim: Claim) -> ServiceTarget:
        service = self._services.get(claim.service_id or -1)
        if service is None:
            raise TargetError(f"service {claim.service_name} no longer exists")
        cached = self._targets.get(service.id)
        if cached is not None and cached[0] == service.version:
            return cached[1]
        target = build_target(self.store, service, self.instance, self._base_dir)
        self._targets[service.id] = (service.version, target)
        return target

    async def _fail(self, claim: Claim, message: str, now: datetime) -> None:
        await _store_call(
            queue.fail_without_attempt,
            self.store,
            runner_id=self.runner_id,
            claim=claim,
            message=message,
            now=now,
        )
        self.stats.failed += 1
        logger.warning(
            "delivery %s failed without an attempt: %s",
            claim.delivery_id,
            message,
            extra={
                "event": "delivery_failed",
                "rule": claim.rule_name,
                "service": claim.service_name,
                "delivery_id": claim.delivery_id,
            },
        )

    def _count(
        self, claim: Claim, record: AttemptRecord, result: AttemptResult, lost: bool
    ) -> None:
        self.stats.attempts += 1
        self.stats.lost_leases += int(lost)
        if record.status == "success":
            self.stats.succeeded += 1
        elif record.status == "failed":
            self.stats.failed += 1
        else:
            self.stats.retrying += 1
        self.metrics.observe(
            site=claim.site_name,
            rule=claim.rule_name,
            service=claim.service_name,
            outcome=record.outcome,
            http_status=result.http_status,
            seconds=result.duration_ms / 1000,
        )
        shown = result.http_status if result.http_status else result.error_class
        logger.info(
            "delivery attempt: rule=%s/%s service=%s delivery_id=%s status=%s "
            "outcome=%s duration_ms=%.1f",
            claim.site_name,
            claim.rule_name,
            claim.service_name,
            claim.delivery_id,
            shown,
            record.outcome,
            result.duration_ms,
            extra={
                "event": "delivery_attempt",
                "rule": claim.rule_name,
                "site": claim.site_name,
                "service": claim.service_name,
                "delivery_id": claim.delivery_id,
                "status": shown,
                "outcome": record.outcome,
                "duration_ms": round(result.duration_ms, 1),
                "attempt": claim.attempt_count + 1,
            },
        )

    async def _heartbeat(self) -> None:
        interval = max(1.0, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._in_flight)
            try:
                await _store_call(
                    queue.renew_leases,
                    self.store,
                    runner_id=self.runner_id,
                    record_ids=ids,
                    now=self.clock(),
                    lease_seconds=self.settings.lease_seconds,
                )
            except (StoreError, SQLAlchemyError) as exc:
                logger.error(
                    "cannot renew leases: %s",
                    describe(exc),
                    extra={"event": "lease_error", "runner": self.runner_id},
                )

    async def _report_queue(self) -> None:
        while True:
            try:
                stats = await _store_call(queue.queue_stats, self.store, self.clock())
            except (StoreError, SQLAlchemyError) as exc:
                logger.warning("cannot read queue statistics: %s", describe(exc))
            else:
                self.metrics.queue_due.set(stats.due)
                self.metrics.queue_oldest_due.set(stats.oldest_due_seconds)
            await asyncio.sleep(STATS_SECONDS)

    async def _settle_in_flight(self) -> None:
        if not self._in_flight:
            return
        tasks = dict(self._in_flight)
        _done, pending = await asyncio.wait(
            tasks.values(), timeout=self.settings.grace_seconds
        )
        if not pending:
            return
        cancelled = [rid for rid, task in tasks.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        logger.warning(
            "released %d deliveries still in flight at shutdown",
            len(cancelled),
            extra={"event": "leases_released", "runner": self.runner_id},
        )
        try:
            await _store_call(
                queue.release,
                self.store,
                runner_id=self.runner_id,
                record_ids=cancelled,
            )
        except (StoreError, SQLAlchemyError) as exc:
            logger.error(
                "cannot release leases; they expire by themselves: %s", describe(exc)
            )


def retry_delay(failures: int, rng: random.Random) -> float:
    """Return the wait after the given number of failures in a row, with jitter."""
    # Jitter keeps many runners that lost the same database from reconnecting
    # in step when it comes back.
    base = DB_RETRY_SECONDS[min(failures, len(DB_RETRY_SECONDS)) - 1]
    return base * rng.uniform(0.8, 1.2)


def describe(exc: BaseException) -> str:
    """Return the first line of a store error, without SQLAlchemy's SQL and link."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    return detail.splitlines()[0] if detail else type(exc).__name__


def _attempt_record(
    claim: Claim,
    started_at: datetime,
    result: AttemptResult,
    outcome: str,
    next_attempt_at: datetime | None,
) -> AttemptRecord:
    status = {"success": "success", "retry": "pending"}.get(outcome, "failed")
    return AttemptRecord(
        claim=claim,
        started_at=started_at,
        duration_ms=result.duration_ms,
        outcome=outcome,
        status=status,
        next_attempt_at=next_attempt_at,
        http_status=result.http_status,
        error_class=result.error_class,
        error_message=result.error_message,
        location=result.location,
        response_headers=result.response_headers,
        response_body=result.response_body,
        summary=None if outcome == "success" else result.summary,
    )


# One lock per process around store calls: on SQLite, two threads of the same
# runner contending for the write lock fall into SQLite's sleeping busy
# handler, which stalled claims by tens of milliseconds in bench/delivery.py.
_STORE_LOCK = threading.Lock()


def _locked(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    with _STORE_LOCK:
        return function(*args, **kwargs)


async def _store_call(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    return await asyncio.to_thread(_locked, function, *args, **kwargs)


class _AttemptWriter:
    """Write attempts in batches: one transaction for all that finished together."""

    def __init__(
        self,
        store: Store,
        runner_id: str,
        stopping: asyncio.Event,
        rng: random.Random,
    ) -> None:
        self._store = store
        self._runner_id = runner_id
        self._queue: asyncio.Queue[tuple[AttemptRecord, asyncio.Future[bool]]]
        self._queue = asyncio.Queue()
        self._stopping = stopping
        self._rng = rng
        self.persistent = False

    async def write(self, record: AttemptRecord) -> bool:
        """Queue an attempt; return True when another runner had taken the lease."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((record, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Attempts that finished while the last batch was written share a
            # transaction; no lingering, because a lease ends only when written.
            while not self._queue.empty() and len(batch) < WRITE_BATCH_MAX:
                batch.append(self._queue.get_nowait())
            await self._write_batch(batch)

    async def _write_batch(
        self, batch: list[tuple[AttemptRecord, asyncio.Future[bool]]]
    ) -> None:
        records = [record for record, _ in batch]
        failures = 0
        while True:
            try:
                lost = await _store_call(
                    queue.record_attempts,
                    self._store,
                    runner_id=self._runner_id,
                    records=records,
                )
                break
            except (StoreError, SQLAlchemyError) as exc:
                failures += 1
                if failures > len(DB_RETRY_SECONDS) and self._gives_up():
                    error = StoreError(f"cannot record attempts: {describe(exc)}")
                    for _record, future in batch:
                        future.set_exception(error)
                    return
                delay = retry_delay(failures, self._rng)
                logger.error(
                    "cannot record %d attempts, retrying in %.1f s: %s",
                    len(records),
                    delay,
                    describe(exc),
                    extra={"event": "record_error", "runner": self._runner_id},
                )
                await asyncio.sleep(delay)
        if failures:
            logger.warning(
                "recorded %d attempts after %d failed writes",
                len(records),
                failures,
                extra={"event": "record_recovered", "runner": self._runner_id},
            )
        for record, future in batch:
            if not future.done():
                future.set_result(record.claim.record_id in lost)

    def _gives_up(self) -> bool:
        # A request that succeeded is confirmed only once its attempt is written,
        # so a runner in service keeps trying until it is stopped.
        return not self.persistent or self._stopping.is_set()

    async def close(self) -> None:
        """Write whatever is queued."""
        batch = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._write_batch(batch)

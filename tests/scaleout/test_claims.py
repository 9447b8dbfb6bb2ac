"""Claims from many runners at once: per-service limits and attempt writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hqsync.delivery.events import validate_event
from hqsync.delivery.outbox import push_events
from hqsync.delivery.queue import AttemptRecord, Claim, claim_due, record_attempts
from hqsync.store import Store, open_store
from hqsync.store.schema import attempts, audit_records
from tests.delivery.helpers import closed_event, local_instance, seed_store

SERVICE_LIMIT = 3
CLAIMERS = 6
ROUNDS = 15


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/hqsync.db"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()


def push(store: Store, count: int, now: datetime) -> None:
    events = [validate_event(closed_event(n, now)) for n in range(count)]
    push_events(store, local_instance(), events, lambda: now)


def claim_at_once(store: Store, now: datetime, round_number: int) -> list[Claim]:
    """Let CLAIMERS threads claim for one service at the same moment."""
    barrier = threading.Barrier(CLAIMERS)
    claimed: list[Claim] = []

    def claimer(number: int) -> None:
        barrier.wait()
        claimed.extend(
            claim_due(
                store,
                runner_id=f"runner-{round_number}-{number}",
                now=now,
                lease_seconds=30,
                limit=10,
                service_limits={},
                default_service_limit=SERVICE_LIMIT,
            )
        )

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed


def release_all(store: Store) -> None:
    with store.begin() as connection:
        connection.execute(
            sa.update(audit_records).values(lease_owner=None, lease_expires_at=None)
        )


def test_claim_due_concurrent_claims_within_limit(store: Store) -> None:
    seed_store(store, url="http://127.0.0.1:9/hook")
    now = datetime.now(UTC)
    push(store, 60, now)
    totals = []
    for round_number in range(ROUNDS):
        totals.append(len(claim_at_once(store, now, round_number)))
        release_all(store)
    assert max(totals) == SERVICE_LIMIT, totals


def test_claim_due_limit_per_service(store: Store) -> None:
    # Every claimer's first batch holds all four services, so each waits for
    # four service locks at once.
    seed_store(store, url="http://127.0.0.1:9/hook", services=4)
    now = datetime.now(UTC)
    push(store, 20, now)  # each event fires one rule per service
    claimed = claim_at_once(store, now, 0)
    per_service = {c.service_name: 0 for c in claimed}
    for claim in claimed:
        per_service[claim.service_name] += 1
    names = ("svc", "svc1", "svc2", "svc3")
    assert per_service == dict.fromkeys(names, SERVICE_LIMIT)


def attempt(claim: Claim, started_at: datetime) -> AttemptRecord:
    return AttemptRecord(
        claim=claim,
        started_at=started_at,
        duration_ms=12.5,
        outcome="success",
        status="success",
        next_attempt_at=None,
        http_status=202,
        error_class=None,
        error_message=None,
        location=None,
        response_headers=None,
        response_body=None,
        summary=None,
    )


def test_record_attempts_written_twice_keeps_one(store: Store) -> None:
    # A retried write whose first commit reached the store but whose reply was
    # lost, as after a connection cut, must not add a second attempt.
    seed_store(store, url="http://127.0.0.1:9/hook")
    now = datetime.now(UTC)
    push(store, 1, now)
    (claim,) = claim_due(
        store,
        runner_id="a",
        now=now,
        lease_seconds=30,
        limit=1,
        service_limits={},
        default_service_limit=5,
    )
    record = attempt(claim, now + timedelta(milliseconds=1))
    first = record_attempts(store, runner_id="a", records=[record])
    second = record_attempts(store, runner_id="a", records=[record])
    with store.engine.connect() as connection:
        written = connection.execute(sa.select(sa.func.count()).select_from(attempts))
        count = written.scalar_one()
    assert first == []
    assert second == []  # not reported as a lease another runner took
    assert count == 1

"""The retry policy: an attempt's outcome as success, retry or failure.

Success is 200, 201 or 202 only. Connection, DNS and TLS errors, timeouts,
408, 425, 429 and 5xx are retried inside the confirmation window on the
jittered schedule :data:`BACKOFF_SECONDS`. A ``Retry-After`` on 429 or 503
replaces the schedule's delay. Everything else (other 4xx, 204, 3xx) fails at
once. A retry that would fall after the window moves to
:data:`FINAL_ATTEMPT_LEAD_SECONDS` before it closes, and when even that has
passed the delivery fails with its last error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

SUCCESS_STATUSES = frozenset({200, 201, 202})
RETRY_STATUSES = frozenset({408, 425, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})

BACKOFF_SECONDS = (10, 60, 300, 900, 1800)
"""Delay after the 1st, 2nd, ... failed attempt; the last one repeats."""
JITTER_FRACTION = 0.2
"""Each delay is drawn uniformly within this fraction either side."""
FINAL_ATTEMPT_LEAD_SECONDS = 60
"""How long before the window closes a retry pushed past it is made."""

Verdict = Literal["success", "retry", "failed"]


@dataclass(frozen=True)
class Decision:
    """The state of a delivery after one attempt."""

    outcome: Verdict
    next_attempt_at: datetime | None = None


def classify_status(status: int) -> Verdict:
    """Classify an HTTP status: success, retry (if time allows) or failed."""
    if status in SUCCESS_STATUSES:
        return "success"
    if status in RETRY_STATUSES or 500 <= status <= 599:
        return "retry"
    return "failed"


def backoff_delay(failed_attempts: int, rng: random.Random) -> float:
    """Return the jittered delay in seconds after the given number of failures."""
    index = min(max(failed_attempts, 1), len(BACKOFF_SECONDS)) - 1
    base = BACKOFF_SECONDS[index]
    return base * rng.uniform(1 - JITTER_FRACTION, 1 + JITTER_FRACTION)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Parse ``Retry-After`` (delay seconds or an HTTP date) into seconds from now."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def decide(
    verdict: Verdict,
    *,
    failed_attempts: int,
    now: datetime,
    window_closes_at: datetime,
    retry_after: float | None,
    rng: random.Random,
) -> Decision:
    """Turn an attempt's verdict into the delivery's next state."""
    if verdict != "retry":
        return Decision(verdict)
    if now >= window_closes_at:
        return Decision("failed")

    delay = (
        retry_after if retry_after is not None else backoff_delay(failed_attempts, rng)
    )
    next_attempt_at = now + timedelta(seconds=delay)
    if next_attempt_at < window_closes_at:
        return Decision("retry", next_attempt_at)

    # Past the window: one last try shortly before it closes, if still ahead.
    last_chance = window_closes_at - timedelta(seconds=FINAL_ATTEMPT_LEAD_SECONDS)
    if last_chance > now:
        return Decision("retry", last_chance)
    return Decision("failed")

"""Audit filters: parse ``--since``-style times and narrow a query on records.

Every filter option may repeat; values of one option are alternatives (OR) and
different options must all hold (AND).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hqsync.errors import AuditError
from hqsync.store.schema import audit_records

STATUSES = ("pending", "success", "failed")
FINISHED_STATUSES = ("success", "failed")
ACTION_TYPES = ("send_to_external_service", "internal")

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=36500)
"""The maximum duration accepted: 100 years of 365 days, far inside datetime."""
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_DURATION = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(text: str, *, option: str = "duration") -> timedelta:
    """Parse a duration such as ``30m``, ``24h``, ``7d``, ``2w`` or ``1h30m``."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise AuditError(
            f"invalid {option} {text!r}: expected a number and a unit "
            "(s, m, h, d or w), such as 30m, 24h or 7d"
        )
    seconds = sum(
        int(number) * _DURATION_UNITS[unit]
        for number, unit in _DURATION_PART.findall(value)
    )
    if seconds == 0:
        raise AuditError(f"invalid {option} {text!r}: the duration must be above 0")
    if seconds > MAX_DURATION.total_seconds():
        raise AuditError(
            f"invalid {option} {text!r}: the duration must be at most 100 years "
            f"({MAX_DURATION.days}d)"
        )
    return timedelta(seconds=seconds)


def parse_time(text: str, *, option: str, now: datetime | None = None) -> datetime:
    """Parse an ISO 8601 time or a duration back from now into an aware UTC time.

    A time without an offset is taken as UTC; a date alone means its midnight UTC.
    """
    value = text.strip()
    if _DURATION.fullmatch(value.lower()):
        current = now or datetime.now(UTC)
        return current - parse_duration(value, option=option)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise AuditError(
            f"invalid {option} {text!r}: expected an ISO 8601 time such as "
            "2026-12-01T10:00:00Z or a duration back from now such as 24h or 7d"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise AuditError(
            f"invalid {option} {text!r}: the time in UTC is outside years 1 to 9999"
        ) from None


def _validated(
    values: Sequence[str], allowed: Sequence[str], option: str
) -> tuple[str, ...]:
    for value in values:
        if value not in allowed:
            raise AuditError(
                f"invalid {option} {value!r}: expected one of {', '.join(allowed)}"
            )
    return tuple(values)


@dataclass(frozen=True)
class AuditFilter:
    """The records a list, export, retry or prune request covers."""

    statuses: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    since: datetime | None = None  # inclusive, created_at
    until: datetime | None = None  # exclusive, created_at

    def __post_init__(self) -> None:
        _validated(self.statuses, STATUSES, "--status")
        _validated(self.actions, ACTION_TYPES, "--action")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise AuditError(f"--{name} must carry a time zone")
        if self.since and self.until and self.since >= self.until:
            raise AuditError(
                f"--since {_iso(self.since)} is not before --until {_iso(self.until)}"
            )

    @classmethod
    def from_options(
        cls,
        *,
        statuses: Sequence[str] = (),
        rules: Sequence[str] = (),
        services: Sequence[str] = (),
        sites: Sequence[str] = (),
        actions: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        now: datetime | None = None,
    ) -> AuditFilter:
        """Build a filter from command-line strings, raising AuditError on bad input."""
        current = now or datetime.now(UTC)
        return cls(
            statuses=tuple(statuses),
            rules=tuple(rules),
            services=tuple(services),
            sites=tuple(sites),
            actions=tuple(actions),
            since=parse_time(since, option="--since", now=current) if since else None,
            until=parse_time(until, option="--until", now=current) if until else None,
        )

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """Return the WHERE conditions on ``audit_records`` that this filter sets."""
        c = audit_records.c
        result: list[sa.ColumnElement[bool]] = []
        for column, values in (
            (c.status, self.statuses),
            (c.rule_name, self.rules),
            (c.service_name, self.services),
            (c.site_name, self.sites),
            (c.action_type, self.actions),
        ):
            if values:
                result.append(column.in_(values))
        # Bind UTC: SQLite keeps a timestamp's fields and drops its offset.
        if self.since is not None:
            result.append(c.created_at >= self.since.astimezone(UTC))
        if self.until is not None:
            result.append(c.created_at < self.until.astimezone(UTC))
        return result


def _iso(value: datetime) -> str:
    return format_time(value)


def format_time(value: datetime) -> str:
    """Format a time as UTC ISO 8601 with microseconds and a ``Z``."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_utc(value: datetime) -> datetime:
    """Return a stored time as aware UTC; SQLite returns naive UTC times."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

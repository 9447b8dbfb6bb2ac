"""Parsing of audit times and durations, and filters combined on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hqsync.audit import AuditFilter, list_records, parse_duration, parse_time
from hqsync.errors import AuditError

from .helpers import NOW, AuditFactory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_parse_duration_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7days", "-1h", "1.5h", "0h", "h7"])
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(AuditError, match="invalid --older-than"):
        parse_duration(text, option="--older-than")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T11:00:00+01:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
    ],
)
def test_parse_time_valid(text: str, expected: datetime) -> None:
    parsed = parse_time(text, option="--since", now=NOW)
    assert parsed == expected
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "12/01/2026", "24 h"])
def test_parse_time_invalid(text: str) -> None:
    with pytest.raises(AuditError, match="invalid --until"):
        parse_time(text, option="--until", now=NOW)


def test_filter_since_after_until() -> None:
    with pytest.raises(AuditError, match="is not before --until"):
        AuditFilter.from_options(since="1h", until="2h", now=NOW)


def test_filter_unknown_status() -> None:
    with pytest.raises(AuditError, match="invalid --status 'failure'"):
        AuditFilter.from_options(statuses=["failure"])


def test_filter_unknown_action() -> None:
    with pytest.raises(AuditError, match="invalid --action 'webhook'"):
        AuditFilter.from_options(actions=["webhook"])


@pytest.fixture
def mixed(factory: AuditFactory) -> dict[str, int]:
    """Insert records that differ in one attribute each; return ids by label."""
    return {
        "base": factory.record(),
        "success": factory.record(status="success"),
        "pending": factory.record(status="pending"),
        "other_rule": factory.record(rule="new-file"),
        "other_service": factory.record(service="power-automate"),
        "other_site": factory.record(site="corporate"),
        "internal": factory.record(action="internal", service=None, status="success"),
        "old": factory.record(created_at=NOW - timedelta(days=10)),
        "new": factory.record(created_at=NOW + timedelta(hours=2)),
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {},
            {
                "base",
                "success",
                "pending",
                "other_rule",
                "other_service",
                "other_site",
                "internal",
                "old",
                "new",
            },
        ),
        ({"statuses": ["success"]}, {"success", "internal"}),
        ({"statuses": ["success", "pending"]}, {"success", "pending", "internal"}),
        (
            {"statuses": ["success"], "actions": ["send_to_external_service"]},
            {"success"},
        ),
        ({"actions": ["internal"]}, {"internal"}),
        ({"rules": ["new-file"]}, {"other_rule"}),
        ({"rules": ["new-file"], "statuses": ["success"]}, set()),
        ({"services": ["power-automate"], "sites": ["litigation"]}, {"other_service"}),
        ({"sites": ["corporate"]}, {"other_site"}),
        (
            {
                "since": "2026-11-30T00:00:00Z",
                "statuses": ["failed"],
                "services": ["salesforce"],
                "sites": ["litigation"],
                "rules": ["closed-matter"],
                "until": "2026-12-01T13:00:00Z",
            },
            {"base"},
        ),
        ({"since": "2026-12-01T13:00:00Z"}, {"new"}),
        ({"until": "2026-11-30T00:00:00Z"}, {"old"}),
        (
            {"since": "3d", "until": "1h", "statuses": ["failed"]},
            {"base", "other_rule", "other_service", "other_site"},
        ),
    ],
)
def test_list_records_filters_combine(
    factory: AuditFactory,
    mixed: dict[str, int],
    options: dict[str, object],
    expected: set[str],
) -> None:
    audit_filter = AuditFilter.from_options(now=NOW + timedelta(hours=3), **options)  # type: ignore[arg-type]
    page = list_records(factory.engine, audit_filter, limit=100)
    labels = {
        label
        for label, record_id in mixed.items()
        if record_id in {summary.id for summary in page.records}
    }
    assert labels == expected

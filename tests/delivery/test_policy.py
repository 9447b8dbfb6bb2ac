from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest

from hqsync.delivery.policy import (
    FINAL_ATTEMPT_LEAD_SECONDS,
    backoff_delay,
    classify_status,
    decide,
    parse_retry_after,
)
from hqsync.delivery.redact import redact_headers, redact_url
from hqsync.delivery.ssrf import AddressPolicy, BlockedAddressError, check_url_host

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CLOSES = NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "success"),
        (201, "success"),
        (202, "success"),
        (204, "failed"),
        (299, "failed"),
        (301, "failed"),
        (400, "failed"),
        (404, "failed"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (599, "retry"),
    ],
)
def test_classify_status(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


def test_backoff_delay_follows_schedule_with_jitter() -> None:
    rng = random.Random(1)
    for failures, base in ((1, 10), (2, 60), (3, 300), (4, 900), (5, 1800), (9, 1800)):
        delay = backoff_delay(failures, rng)
        assert base * 0.8 <= delay <= base * 1.2, failures


def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Tue, 01 Dec 2026 10:02:00 GMT", NOW) == 120


def test_parse_retry_after_garbage() -> None:
    assert parse_retry_after("soon", NOW) is None


def test_decide_retry_after_capped_by_window() -> None:
    decision = decide(
        "retry",
        failed_attempts=1,
        now=NOW,
        window_closes_at=CLOSES,
        retry_after=7200,
        rng=random.Random(1),
    )
    expected = CLOSES - timedelta(seconds=FINAL_ATTEMPT_LEAD_SECONDS)
    assert decision.outcome == "retry"
    assert decision.next_attempt_at == expected


def test_decide_fails_when_window_closed() -> None:
    decision = decide(
        "retry",
        failed_attempts=3,
        now=CLOSES - timedelta(seconds=30),
        window_closes_at=CLOSES,
        retry_after=None,
        rng=random.Random(1),
    )
    assert decision.outcome == "failed"


def test_decide_permanent_failure_is_final() -> None:
    decision = decide(
        "failed",
        failed_attempts=1,
        now=NOW,
        window_closes_at=CLOSES,
        retry_after=None,
        rng=random.Random(1),
    )
    assert decision.next_attempt_at is None


BLOCKED = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "[::ffff:10.0.0.1]",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "2002:7f00:1::",
    "64:ff9b::a9fe:a9fe",
]


@pytest.mark.parametrize("host", BLOCKED)
def test_ssrf_guard_blocks(host: str) -> None:
    with pytest.raises(BlockedAddressError):
        check_url_host(host, AddressPolicy())


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700::1111", "example.invalid"])
def test_ssrf_guard_allows_public(host: str) -> None:
    check_url_host(host, AddressPolicy())


def test_ssrf_guard_allow_networks_opens_loopback() -> None:
    policy = AddressPolicy.from_strings(["127.0.0.0/8"])
    check_url_host("127.0.0.1", policy)
    check_url_host("::ffff:127.0.0.1", policy)
    with pytest.raises(BlockedAddressError):
        check_url_host("10.0.0.1", policy)


def test_ssrf_guard_message_names_address() -> None:
    with pytest.raises(
        BlockedAddressError, match=r"169\.254\.169\.254 is a cloud metadata"
    ):
        AddressPolicy().check(ipaddress.ip_address("169.254.169.254"))


def test_redact_url_query_and_userinfo() -> None:
    url = "https://user:pw@flow.example.invalid/run?api-version=1&sig=abc&sp=x"
    redacted = redact_url(url)
    assert "abc" not in redacted
    assert "pw" not in redacted
    assert "api-version=1" in redacted


def test_redact_headers_keeps_scheme() -> None:
    headers = redact_headers({"Authorization": "Bearer tok", "HighQ-Auth-Key": "k"})
    assert headers == {"Authorization": "Bearer REDACTED", "HighQ-Auth-Key": "REDACTED"}

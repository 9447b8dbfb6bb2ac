"""URL normalisation and credential redaction."""

from __future__ import annotations

import pytest

from hqsync.plan.urls import has_credentials, normalize_url, redact_url, url_host


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM:443/Path", "https://example.com/Path"),
        ("http://example.com:80", "http://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("https://u:p@Example.com/x?a=B", "https://u:p@example.com/x?a=B"),
    ],
)
def test_normalize_url_cases(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/x?sig=abc&sv=1", "https://h/x?sig=REDACTED&sv=1"),
        (
            "https://h/x?api-version=1&code=abc",
            "https://h/x?api-version=1&code=REDACTED",
        ),
        ("https://user:pw@h/x", "https://REDACTED@h/x"),
        (
            "https://h/x?Token=a&password=b",
            "https://h/x?Token=REDACTED&password=REDACTED",
        ),
        ("https://h/x", "https://h/x"),
    ],
)
def test_redact_url_cases(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_has_credentials_detects_query_and_userinfo() -> None:
    assert has_credentials("https://h/x?sig=1")
    assert has_credentials("https://u@h/x")
    assert not has_credentials("https://h/x?sv=1")


def test_url_host_drops_userinfo() -> None:
    assert url_host("https://u:p@h.example:8443/x") == "h.example:8443"

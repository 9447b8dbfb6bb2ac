"""Redaction of credentials in URLs and headers before they are stored or logged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hqsync.config.urls import REDACTED, redact_url

__all__ = ["REDACTED", "SENSITIVE_HEADERS", "redact_headers", "redact_url"]

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "highq-auth-key",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
    }
)


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """Return the headers with every credential-bearing value replaced."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    redacted: dict[str, str] = {}
    for name, value in items:
        if name.lower() in SENSITIVE_HEADERS:
            scheme = value.split(" ", 1)[0] if name.lower() == "authorization" else ""
            value = f"{scheme} {REDACTED}" if " " in value and scheme else REDACTED
        elif name.lower() == "location":
            value = redact_url(value)
        redacted[name] = value
    return redacted

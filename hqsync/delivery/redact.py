"""Redaction of credentials in URLs and headers before they are stored or logged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hqsync.config.models import CREDENTIAL_QUERY_KEYS

REDACTED = "REDACTED"

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


def redact_url(url: str) -> str:
    """Replace user info and credential query values (``sig``, ``token``) in a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [
                (key, REDACTED if CREDENTIAL_QUERY_KEYS.match(key) else value)
                for key, value in pairs
            ],
            safe="/:",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


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

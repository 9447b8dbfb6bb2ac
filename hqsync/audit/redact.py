"""Redact secrets from audit data again before it leaves the store.

The runner stores URLs and headers already redacted. This second pass is
defence in depth, so an export stays clean even if a row slipped through.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "REDACTED"

# Header names are matched case-insensitively, in full or by a part of the name.
_SECRET_HEADERS = frozenset(
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
_SECRET_HEADER_PART = re.compile(
    r"auth|token|secret|passw|cookie|api-?key|signature|session|credential", re.I
)
# Query parameters that carry credentials: Power Automate and Azure SAS ``sig``,
# Azure Functions ``code``, OAuth ``access_token``, and the usual key names.
_SECRET_PARAM_PART = re.compile(
    r"sig|token|key|secret|passw|pwd|auth|code|credential|session", re.I
)
_SCHEME = re.compile(
    r"Basic|Bearer|Digest|Negotiate|NTLM|Token|SharedAccessSignature", re.I
)
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


@functools.lru_cache(maxsize=1024)
def is_secret_header(name: str) -> bool:
    """Return whether a header name carries a credential."""
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or bool(_SECRET_HEADER_PART.search(lowered))


def _redacted_value(name: Any, value: Any) -> Any:
    if not is_secret_header(str(name)):
        return value
    # Keep an authorization scheme such as ``Bearer``: support needs to see it.
    scheme, space, _ = str(value).partition(" ")
    if space and _SCHEME.fullmatch(scheme):
        return f"{scheme} {REDACTED}"
    return REDACTED


def is_redacted(value: Any) -> bool:
    """Return whether a header value reads ``REDACTED`` or ``<scheme> REDACTED``."""
    if value == REDACTED:
        return True
    if not isinstance(value, str):
        return False
    scheme, space, rest = value.partition(" ")
    return bool(space) and rest == REDACTED and bool(_SCHEME.fullmatch(scheme))


def needs_redaction(headers: Any) -> bool:
    """Return whether ``redact_headers`` would change a mapping of headers."""
    if not isinstance(headers, dict):
        return True
    return any(
        is_secret_header(str(name)) and not is_redacted(value)
        for name, value in headers.items()
    )


def redact_headers(headers: Any) -> Any:
    """Return headers (a mapping or a list of pairs) with secret values replaced."""
    if isinstance(headers, dict):
        return {name: _redacted_value(name, value) for name, value in headers.items()}
    if isinstance(headers, list):
        result: list[Any] = []
        for pair in headers:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                name, value = pair
                result.append([name, _redacted_value(name, value)])
            else:
                # An entry of unknown shape may be a secret: keep none of it.
                result.append(REDACTED)
        return result
    return headers


def redact_url(url: str | None) -> str | None:
    """Return a URL with its userinfo and credential query values replaced."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    # Rewrite the raw query segment by segment rather than through urlencode,
    # which would re-encode the values that stay (``%2F`` would become ``/``).
    query = "&".join(
        _redact_query_segment(segment) for segment in parts.query.split("&")
    )
    # A fragment can carry tokens (OAuth implicit flow); keep none of it.
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_query_segment(segment: str) -> str:
    name, separator, _ = segment.partition("=")
    if separator and _SECRET_PARAM_PART.search(unquote_plus(name)):
        return f"{name}={REDACTED}"
    return segment


def redact_text(text: str | None) -> str | None:
    """Return free text (an error message) with every URL in it redacted."""
    if not text or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)) or "", text)

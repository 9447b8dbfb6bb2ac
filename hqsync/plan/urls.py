"""URL normalisation and credential redaction for plans, exports and logs.

A URL is normalised by lower-casing its scheme and host and dropping the
scheme's default port, so ``HTTPS://Example.COM:443/x`` and
``https://example.com/x`` compare equal. Redaction replaces userinfo and the
values of query parameters that carry credentials (``sig``, ``token``,
``key``, ``code``, ``password`` and the others in
:data:`hqsync.config.models.CREDENTIAL_QUERY_KEYS`) with ``REDACTED``.
"""

from __future__ import annotations

from urllib.parse import (
    SplitResult,
    parse_qsl,
    quote,
    urlencode,
    urlsplit,
    urlunsplit,
)

from hqsync.config.models import CREDENTIAL_QUERY_KEYS

REDACTED = "REDACTED"

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str:
    """Lower-case scheme and host, drop a default port and give an empty path "/"."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = _normalize_netloc(scheme, parts)
    path = parts.path or ("/" if netloc else "")
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))


def _normalize_netloc(scheme: str, parts: SplitResult) -> str:
    try:
        port = parts.port
    except ValueError:
        # An invalid port is kept as written; validation reports it elsewhere.
        return parts.netloc.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    userinfo, at, _ = parts.netloc.rpartition("@")
    prefix = f"{userinfo}@" if at else ""
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{prefix}{host}:{port}"
    return f"{prefix}{host}"


def has_credentials(url: str) -> bool:
    """Tell whether a URL carries userinfo or a credential query parameter."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return True
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return any(CREDENTIAL_QUERY_KEYS.match(key) for key, _ in pairs)


def redact_url(url: str) -> str:
    """Replace userinfo and credential query values with REDACTED."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        redacted = [
            (key, REDACTED if CREDENTIAL_QUERY_KEYS.match(key) else value)
            for key, value in pairs
        ]
        query = urlencode(redacted, quote_via=quote, safe="")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_host(url: str) -> str:
    """Return the host (and non-default port) of a URL, without userinfo."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]

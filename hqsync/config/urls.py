"""Credential-bearing URLs: how to detect them and how to redact them.

One definition serves the configuration check (a literal URL with credentials
is an error), plans, the stored API URL of each delivery and the logs. A URL
carries credentials when it has userinfo or a query parameter named in
:data:`hqsync.config.models.CREDENTIAL_QUERY_KEYS` (``sig``, ``token``,
``key``, ``code``, ``password`` and the others there).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from hqsync.config.models import CREDENTIAL_QUERY_KEYS

REDACTED = "REDACTED"


def has_credentials(url: str) -> bool:
    """Return whether a URL carries userinfo or a credential query parameter."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return True
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return any(CREDENTIAL_QUERY_KEYS.match(key) for key, _ in pairs)


def redact_url(url: str) -> str:
    """Replace userinfo and credential query values with ``REDACTED``.

    A URL that cannot be parsed is replaced whole, since any part of it may be
    a credential.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
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

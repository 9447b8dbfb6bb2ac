"""URL normalisation for plans, and the credential rules plans use.

A URL is normalised by lower-casing its scheme and host and dropping the
scheme's default port, so ``HTTPS://Example.COM:443/x`` and
``https://example.com/x`` compare equal. Which URLs carry credentials, and
their redacted form, come from :mod:`hqsync.config.urls`.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

from hqsync.config.urls import REDACTED, has_credentials, redact_url

__all__ = ["REDACTED", "has_credentials", "normalize_url", "redact_url", "url_host"]

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


def url_host(url: str) -> str:
    """Return the host (and non-default port) of a URL, without userinfo."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]

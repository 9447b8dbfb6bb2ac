"""Settings of the sandbox receiver: bind address, credentials, misbehaviour."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hqsync.errors import SandboxError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780
# The header hqsync.delivery.sender sends; not imported, because that module
# pulls in httpx and the OAuth2 client.
DEFAULT_DELIVERY_ID_HEADER = "X-HighQ-Delivery-Id"
FAIL_STATUSES = (429, 500, 502, 503, 504)

# Well-known values, printed in the docs, so a configuration works against a
# sandbox started with no settings. They protect nothing.
DEFAULT_PA_KEY = "sandbox-highq-auth-key"
DEFAULT_PA_SIG = "sandbox-signature"
DEFAULT_SF_CLIENT_ID = "sandbox-client-id"
DEFAULT_SF_CLIENT_SECRET = "sandbox-client-secret"

# Environment variable for each credential field of SandboxConfig.
CREDENTIAL_VARIABLES = {
    "pa_key": "HQSYNC_SANDBOX_PA_KEY",
    "pa_sig": "HQSYNC_SANDBOX_PA_SIG",
    "sf_client_id": "HQSYNC_SANDBOX_SF_CLIENT_ID",
    "sf_client_secret": "HQSYNC_SANDBOX_SF_CLIENT_SECRET",
}


@dataclass(frozen=True)
class SandboxConfig:
    """Settings of one sandbox receiver; invalid values raise SandboxError."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0 picks a free port
    pa_key: str = field(default=DEFAULT_PA_KEY, repr=False)
    pa_sig: str = field(default=DEFAULT_PA_SIG, repr=False)
    sf_client_id: str = field(default=DEFAULT_SF_CLIENT_ID, repr=False)
    sf_client_secret: str = field(default=DEFAULT_SF_CLIENT_SECRET, repr=False)
    fail_rate: float = 0.0  # share of webhook requests failed with fail_status
    fail_status: int = 503
    retry_after: int | None = None  # seconds, sent with every injected failure
    slow_seconds: float = 0.0  # delay before each service endpoint responds
    seed: int | None = None  # seed of the fail-rate random generator
    record_path: Path | None = None  # JSON Lines file each delivery is added to
    delivery_id_header: str = DEFAULT_DELIVERY_ID_HEADER
    allow_remote_bind: bool = False

    def __post_init__(self) -> None:
        problems = _setting_problems(self)
        if problems:
            raise SandboxError("invalid sandbox settings: " + "; ".join(problems))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **settings: object
    ) -> SandboxConfig:
        """Build settings; credentials not given come from HQSYNC_SANDBOX_* vars."""
        source = os.environ if environ is None else environ
        credentials: dict[str, object] = {
            name: source[variable]
            for name, variable in CREDENTIAL_VARIABLES.items()
            if source.get(variable)
        }
        return cls(**{**credentials, **settings})  # type: ignore[arg-type]

    @property
    def credentials(self) -> tuple[str, ...]:
        """Return every credential value, for redaction."""
        return (self.pa_key, self.pa_sig, self.sf_client_id, self.sf_client_secret)


def _setting_problems(config: SandboxConfig) -> list[str]:
    problems = []
    if not 0 <= config.port <= 65535:
        problems.append(f"port {config.port} is not between 0 and 65535")
    if not config.allow_remote_bind and not is_loopback_host(config.host):
        problems.append(
            f"bind host {config.host!r} is not a loopback address; the sandbox "
            "accepts sandbox credentials from anyone who can reach it, so bind "
            "127.0.0.1 or ::1, or pass --allow-remote-bind"
        )
    if not 0.0 <= config.fail_rate <= 1.0:
        problems.append(f"fail rate {config.fail_rate} is not between 0 and 1")
    if config.fail_status not in FAIL_STATUSES:
        allowed = ", ".join(str(status) for status in FAIL_STATUSES)
        problems.append(f"fail status {config.fail_status} is not one of {allowed}")
    if config.retry_after is not None and config.retry_after < 0:
        problems.append(f"retry-after {config.retry_after} is negative")
    if config.slow_seconds < 0:
        problems.append(f"slow delay {config.slow_seconds} s is negative")
    if not config.delivery_id_header.strip():
        problems.append("the delivery id header name is empty")
    for name in CREDENTIAL_VARIABLES:
        if not getattr(config, name):
            problems.append(f"{name} is empty")
    return problems


def is_loopback_host(host: str) -> bool:
    """Return whether a bind host is a loopback address or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_bind(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` or ``[IPV6]:PORT`` into host and port."""
    host, separator, port_text = value.rpartition(":")
    if not separator or not host or not port_text.isdigit():
        raise SandboxError(f"invalid bind address {value!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise SandboxError(
            f"invalid bind address {value!r}: write an IPv6 host in brackets, "
            "as [::1]:PORT"
        )
    return host, int(port_text)

"""Build a send :class:`~hqsync.delivery.sender.Target` from a live service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from hqsync.config.models import Instance
from hqsync.delivery.oauth import ClientCredentials
from hqsync.delivery.sender import Target
from hqsync.store import LiveResource, Store
from hqsync.store.schema import resources


class TargetError(Exception):
    """A service cannot be sent to at all: missing, inactive or misconfigured."""


@dataclass(frozen=True)
class ServiceTarget:
    """A service's send target and its concurrency limit."""

    target: Target
    max_concurrency: int


def load_services(store: Store) -> dict[int, LiveResource]:
    """Read every live service by id, secrets still encrypted."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(resources).where(resources.c.kind == "service")
        ).all()
    services = {}
    for row in rows:
        data = row._mapping
        services[int(data["id"])] = LiveResource(
            id=int(data["id"]),
            kind=data["kind"],
            scope=data["scope"],
            name=data["name"],
            parent_id=data["parent_id"],
            spec=dict(data["spec"]),
            fingerprints=dict(data["fingerprints"] or {}),
            managed=bool(data["managed"]),
            version=int(data["version"]),
            created_at=data["created_at"],
            updated_at=data["updated_at"],
            secrets_token=data["secrets"],
        )
    return services


def build_target(
    store: Store,
    service: LiveResource,
    instance: Instance,
    base_dir: Path | None = None,
) -> ServiceTarget:
    """Build a service's target with its secrets; raise TargetError if unusable."""
    spec = service.spec
    if spec.get("status", "active") != "active":
        raise TargetError(f"service {service.name} is inactive")
    secrets = store.decrypt_secrets(service)
    url = secrets.get("url") or str(spec.get("url", ""))
    _check_scheme(service.name, "URL", url, instance)

    auth: dict[str, Any] = dict(spec.get("auth") or {})
    if auth.get("token_url"):
        _check_scheme(service.name, "token_url", str(auth["token_url"]), instance)
    ca_bundle = _resolve(spec.get("ca_bundle") or instance.ca_bundle, base_dir)
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise TargetError(f"service {service.name}: CA bundle {ca_bundle} not found")
    target = Target(
        url=url,
        auth_type=str(auth.get("type", "")),
        auth_key=secrets.get("key"),
        credentials=_credentials(service.name, auth, secrets),
        ca_bundle=ca_bundle,
        timeout_seconds=float(
            spec.get("timeout_seconds") or instance.delivery.timeout_seconds
        ),
    )
    if target.auth_type == "header" and not target.auth_key:
        raise TargetError(f"service {service.name}: the HighQ-Auth-Key is missing")
    limit = spec.get("max_concurrency") or instance.delivery.per_service_concurrency
    return ServiceTarget(target=target, max_concurrency=int(limit))


def _check_scheme(name: str, field: str, url: str, instance: Instance) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and instance.allow_http):
        return
    raise TargetError(
        f"service {name}: {field} scheme {scheme or '(none)'!r} is not allowed; "
        "use https, or set allow_http on the instance for local testing"
    )


def _credentials(
    name: str, auth: dict[str, Any], secrets: dict[str, str]
) -> ClientCredentials | None:
    if auth.get("type") != "oauth2":
        return None
    client_id = secrets.get("client_id") or auth.get("client_id")
    client_secret = secrets.get("client_secret")
    if not client_id or not client_secret or not auth.get("token_url"):
        raise TargetError(
            f"service {name}: OAuth2 needs token_url, client_id and client_secret"
        )
    return ClientCredentials(
        token_url=str(auth["token_url"]),
        client_id=str(client_id),
        client_secret=client_secret,
        scope=auth.get("scope"),
        auth_method=str(auth.get("token_auth_method") or "client_secret_post"),
    )


def _resolve(path: str | None, base_dir: Path | None) -> str | None:
    if path is None:
        return None
    candidate = Path(path)
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    return str(candidate)

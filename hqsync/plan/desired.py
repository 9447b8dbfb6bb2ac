"""Turn a loaded configuration into desired resources with normalised specs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from hqsync.config.models import (
    ExternalService,
    FromEnv,
    FromFile,
    Generate,
    HeaderAuth,
    Instance,
    OAuth2Auth,
    Rule,
    SendToExternalService,
    Site,
)
from hqsync.config.secrets import SecretValue
from hqsync.errors import PlanError
from hqsync.plan.specs import (
    DesiredResource,
    canonical_spec,
    normalize_folder,
    resource_key,
)
from hqsync.plan.urls import has_credentials, normalize_url


class DesiredConfig(Protocol):
    """The part of :class:`hqsync.config.LoadedConfig` that planning reads."""

    @property
    def instance(self) -> Instance: ...

    @property
    def services(self) -> Mapping[str, ExternalService] | Iterable[ExternalService]: ...

    @property
    def sites(self) -> Mapping[str, Site] | Iterable[Site]: ...

    @property
    def rules(self) -> Mapping[tuple[str, str], Rule] | Iterable[Rule]: ...

    @property
    def secrets(self) -> Mapping[tuple[str, str], SecretValue]: ...


def _values(collection: Any) -> list[Any]:
    if isinstance(collection, Mapping):
        return list(collection.values())
    return list(collection)


def desired_resources(config: DesiredConfig) -> list[DesiredResource]:
    """Build every desired resource of a configuration, in kind order."""
    resources: list[DesiredResource] = []
    for service in _values(config.services):
        resources.append(service_resource(service, config.secrets))
    for site in _values(config.sites):
        resources.extend(site_resources(site))
    for rule in _values(config.rules):
        resources.append(rule_resource(rule))
    return resources


def _secret(
    secrets: Mapping[tuple[str, str], SecretValue], service: str, field: str
) -> SecretValue:
    for key in ((service, field), (service, f"auth.{field}")):
        if key in secrets:
            return secrets[key]
    raise PlanError(
        f"service {service}: secret {field} is missing from the loaded configuration"
    )


def service_resource(
    service: ExternalService, secrets: Mapping[tuple[str, str], SecretValue]
) -> DesiredResource:
    """Build a service's desired resource: its spec, secrets and key generation."""
    found: dict[str, SecretValue] = {}
    if isinstance(service.url, FromEnv | FromFile):
        source = _secret(secrets, service.name, "url")
        url = normalize_url(source.reveal())
        found["url"] = SecretValue(url, source.source)
    else:
        url = normalize_url(service.url)
        if has_credentials(url):
            found["url"] = SecretValue(url, "config")
    auth, generate = _auth_spec(service, secrets, found)
    spec = {
        "url": url,
        "status": service.status,
        "auth": auth,
        "description": service.description,
        "ca_bundle": service.ca_bundle,
        "max_concurrency": service.max_concurrency,
        "timeout_seconds": service.timeout_seconds,
    }
    return DesiredResource(
        kind="service",
        scope="",
        name=service.name,
        spec=canonical_spec("service", service.name, spec),
        secrets=found,
        generate_key=generate,
    )


def _auth_spec(
    service: ExternalService,
    secrets: Mapping[tuple[str, str], SecretValue],
    found: dict[str, SecretValue],
) -> tuple[dict[str, Any], bool]:
    auth = service.auth
    if isinstance(auth, HeaderAuth):
        if isinstance(auth.key, Generate):
            return {"type": "header"}, True
        found["key"] = _secret(secrets, service.name, "key")
        return {"type": "header"}, False
    assert isinstance(auth, OAuth2Auth)
    client_id: str | None = None
    if isinstance(auth.client_id, str):
        client_id = auth.client_id
    else:
        found["client_id"] = _secret(secrets, service.name, "client_id")
    found["client_secret"] = _secret(secrets, service.name, "client_secret")
    spec = {
        "type": "oauth2",
        "grant_type": auth.grant_type,
        "token_url": auth.token_url,
        "client_id": client_id,
        "scope": auth.scope,
        "token_auth_method": auth.token_auth_method,
    }
    return spec, False


def site_resources(site: Site) -> list[DesiredResource]:
    """Build a site's desired resources: the site, its iSheets, columns and folders."""
    site_key = resource_key("site", "", site.name)
    spec = {"title": site.title, "template": site.template}
    resources = [
        DesiredResource("site", "", site.name, canonical_spec("site", site.name, spec))
    ]
    for isheet in site.isheets:
        isheet_spec = canonical_spec("isheet", isheet.name, {"title": isheet.title})
        resources.append(
            DesiredResource(
                "isheet", site.name, isheet.name, isheet_spec, parent=site_key
            )
        )
        isheet_key = resource_key("isheet", site.name, isheet.name)
        scope = f"{site.name}/{isheet.name}"
        for position, column in enumerate(isheet.columns):
            column_spec = {
                "title": column.title,
                "type": column.type,
                "choices": column.choices,
                "position": position,
            }
            resources.append(
                DesiredResource(
                    "column",
                    scope,
                    column.name,
                    canonical_spec("column", column.name, column_spec),
                    parent=isheet_key,
                )
            )
    for folder in site.folders:
        path = normalize_folder(folder)
        resources.append(
            DesiredResource("folder", site.name, path, {}, parent=site_key)
        )
    return resources


def rule_resource(rule: Rule) -> DesiredResource:
    """Build a rule's desired resource; services and columns are named, not ids."""
    actions: list[dict[str, Any]] = []
    for action in rule.actions:
        if isinstance(action, SendToExternalService):
            actions.append(
                {
                    "type": action.type,
                    "service": action.service,
                    "columns": action.columns,
                }
            )
        else:
            actions.append(
                {"type": action.type, "name": action.name, "params": action.params}
            )
    trigger = rule.trigger
    spec = {
        "description": rule.description,
        "enabled": rule.enabled,
        "trigger": {
            "type": trigger.type,
            "isheet": trigger.isheet,
            "folder": trigger.folder,
        },
        "conditions": [
            {
                "column": condition.column,
                "field": condition.field,
                "operator": condition.operator,
                "value": condition.value,
            }
            for condition in rule.conditions
        ],
        "actions": actions,
    }
    return DesiredResource(
        "rule",
        rule.site,
        rule.name,
        canonical_spec("rule", rule.name, spec),
        parent=resource_key("site", "", rule.site),
    )

"""Make a site template from an instance's live state, with its dependency report.

The template names everything (iSheets, columns, folders, rules, services)
and contains no instance ids and no secrets. Its order is fixed so that two
instances with the same site export the same template: iSheets, rules and
folders by name, columns by position.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from hqsync.config.models import (
    Dependency,
    SendToExternalService,
    SiteTemplate,
    name_problem,
    printable_name,
)
from hqsync.errors import TemplateError
from hqsync.plan.export import site_documents
from hqsync.plan.specs import SECRET_FIELDS, canonical_spec
from hqsync.store import LiveResource, name_key
from hqsync.templates.document import FORMAT_VERSION

_RULE_FIELDS_DROPPED = ("kind", "site")


def export_template(
    live: list[LiveResource], site: str, *, name: str | None = None
) -> SiteTemplate:
    """Build the template of live site ``site``; raise TemplateError if it is missing.

    The template's ``description`` is the site's title, so an import can give
    the new site the same title.
    """
    problem = None if name is None else name_problem(name)
    if name is not None and problem is not None:
        raise TemplateError(
            f"invalid template name '{printable_name(name)}': {problem}"
        )
    documents = _site_documents(live, site)
    site_document, rule_documents = documents[0], documents[1:]
    isheets = sorted(
        site_document.get("isheets", []), key=lambda i: name_key(i["name"])
    )
    rules = [
        {key: value for key, value in rule.items() if key not in _RULE_FIELDS_DROPPED}
        for rule in sorted(rule_documents, key=lambda r: name_key(r["name"]))
    ]
    data: dict[str, Any] = {
        "kind": "SiteTemplate",
        "name": name or site_document["name"],
        "format_version": FORMAT_VERSION,
        "description": site_document.get("title") or None,
        "isheets": isheets,
        "folders": sorted(site_document.get("folders", [])),
        "rules": rules,
    }
    try:
        template = SiteTemplate.model_validate(data)
    except ValidationError as exc:
        raise TemplateError(
            f"the live state of site {site_document['name']} does not form a valid "
            f"site template: {exc}"
        ) from None
    dependencies = dependencies_of(template, _services(live))
    return template.model_copy(update={"dependencies": dependencies})


def _site_documents(live: list[LiveResource], site: str) -> list[dict[str, Any]]:
    by_key = {name_key(name): docs for name, docs in site_documents(live).items()}
    found = by_key.get(name_key(site))
    if found is None:
        names = sorted(r.name for r in live if r.kind == "site")
        defined = ", ".join(names) if names else "none"
        raise TemplateError(
            f"site '{site}' does not exist on this instance (sites: {defined})"
        )
    return found


def _services(live: list[LiveResource]) -> dict[str, LiveResource]:
    return {name_key(r.name): r for r in live if r.kind == "service"}


def dependencies_of(
    template: SiteTemplate, services: dict[str, LiveResource]
) -> list[Dependency]:
    """List every rule action that calls an external service, with its auth and secrets.

    ``services`` maps name keys to live services; a rule that calls a service
    missing from it raises TemplateError, because its auth type is unknown.
    """
    dependencies: list[Dependency] = []
    for rule in template.rules:
        for action in rule.actions:
            if not isinstance(action, SendToExternalService):
                continue
            service = services.get(name_key(action.service))
            if service is None:
                raise TemplateError(
                    f"rule '{rule.name}' calls service '{action.service}', which "
                    "does not exist on this instance; create the service or fix "
                    "the rule before exporting"
                )
            dependency = Dependency(
                rule=rule.name,
                service=service.name,
                auth_type=auth_type(service),
                secrets=secret_fields(service),
            )
            if dependency not in dependencies:
                dependencies.append(dependency)
    return dependencies


def auth_type(service: LiveResource) -> Literal["oauth2", "header"]:
    """Return a live service's auth type: ``oauth2`` or ``header``."""
    spec = canonical_spec("service", service.name, service.spec)
    return "oauth2" if spec["auth"].get("type") == "oauth2" else "header"


def secret_fields(service: LiveResource) -> list[str]:
    """Return the secret fields a copy of ``service`` needs, in a fixed order."""
    return [field for field in SECRET_FIELDS if field in service.fingerprints]

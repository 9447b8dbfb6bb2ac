"""Write the live state as configuration files, so an instance can be adopted.

Services go to ``services.yaml``; each site, with its iSheets, folders and
rules, to ``sites/<site>.yaml``. Secrets are written as ``{from_env: NAME}``
placeholders and never as values; :func:`export_live` returns the variable
names to set. A site made from a template is written out in full, without
``template``, because the store does not keep templates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from hqsync.atomicfile import write_output
from hqsync.config.render import literal_data
from hqsync.errors import OutputError
from hqsync.plan.specs import canonical_spec
from hqsync.store import LiveResource, Store


def secret_variable(service: str, field: str) -> str:
    """Return the environment variable name an export uses for a secret field."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", service).strip("_").upper() or "SERVICE"
    return f"HQSYNC_{slug}_{field.upper()}"


def export_live(store: Store, out_dir: Path, *, force: bool = False) -> list[str]:
    """Write the live state under ``out_dir``; return the secret variable names.

    Raise OutputError, and write nothing, if a file to write exists already and
    ``force`` is false.
    """
    live = store.read_resources()
    variables: list[str] = []
    # The loader renders every string as a template, so text with Jinja2
    # markers is written in a form that loads back unchanged.
    services = [
        literal_data(_service_document(resource, variables))
        for resource in live
        if resource.kind == "service"
    ]
    sites = {
        name: literal_data(documents)
        for name, documents in _site_documents(live).items()
    }
    files: dict[Path, list[dict[str, Any]]] = {}
    if services:
        files[out_dir / "services.yaml"] = services
    for name, documents in sites.items():
        files[_site_path(out_dir, name, files)] = documents
    existing = [path for path in files if path.exists() or path.is_symlink()]
    if existing and not force:
        listed = "\n".join(f"  {path}" for path in existing)
        raise OutputError(
            f"export would overwrite {len(existing)} existing file(s):\n{listed}\n"
            "move them away, choose another --out, or rerun with --force"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, documents in files.items():
        _write(path, documents)
    return variables


def _file_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "site"


def _site_path(out_dir: Path, name: str, assigned: dict[Path, Any]) -> Path:
    # Names such as "a b" and "a_b" share a file name; number the later ones
    # rather than let one site's file replace the other's.
    stem = _file_name(name)
    path = out_dir / "sites" / f"{stem}.yaml"
    number = 2
    while path in assigned:
        path = out_dir / "sites" / f"{stem}-{number}.yaml"
        number += 1
    return path


def _write(path: Path, documents: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(
        documents, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    write_output(path, text)


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _service_document(resource: LiveResource, variables: list[str]) -> dict[str, Any]:
    spec = canonical_spec("service", resource.name, resource.spec)
    secret_fields = set(resource.fingerprints)

    def placeholder(field: str) -> dict[str, str]:
        name = secret_variable(resource.name, field)
        variables.append(name)
        return {"from_env": name}

    auth = dict(spec.get("auth") or {})
    if auth.get("type") == "oauth2":
        if "client_id" in secret_fields:
            auth["client_id"] = placeholder("client_id")
        auth["client_secret"] = placeholder("client_secret")
    else:
        auth = {"type": "header", "key": placeholder("key")}
    document: dict[str, Any] = {
        "kind": "ExternalService",
        "name": resource.name,
        "description": spec.get("description"),
        "url": placeholder("url") if "url" in secret_fields else spec.get("url"),
        "status": spec.get("status"),
        "auth": _drop_none(auth),
        "ca_bundle": spec.get("ca_bundle"),
        "max_concurrency": spec.get("max_concurrency"),
        "timeout_seconds": spec.get("timeout_seconds"),
    }
    return _drop_none(document)


def site_documents(live: list[LiveResource]) -> dict[str, list[dict[str, Any]]]:
    """Build each live site's Site and Rule documents, keyed by site name."""
    return _site_documents(live)


def _site_documents(live: list[LiveResource]) -> dict[str, list[dict[str, Any]]]:
    by_parent: dict[int, list[LiveResource]] = defaultdict(list)
    for resource in live:
        if resource.parent_id is not None:
            by_parent[resource.parent_id].append(resource)
    rules_by_site: dict[str, list[LiveResource]] = defaultdict(list)
    for resource in live:
        if resource.kind == "rule":
            rules_by_site[resource.scope].append(resource)

    result: dict[str, list[dict[str, Any]]] = {}
    for site in (resource for resource in live if resource.kind == "site"):
        children = by_parent.get(site.id, [])
        documents = [_site_document(site, children, by_parent)]
        for rule in sorted(rules_by_site.get(site.name, []), key=lambda r: r.name):
            documents.append(_rule_document(rule))
        result[site.name] = documents
    return result


def _site_document(
    site: LiveResource,
    children: list[LiveResource],
    by_parent: dict[int, list[LiveResource]],
) -> dict[str, Any]:
    isheets = []
    for isheet in sorted(
        (c for c in children if c.kind == "isheet"), key=lambda c: c.id
    ):
        columns = sorted(
            (c for c in by_parent.get(isheet.id, []) if c.kind == "column"),
            key=lambda c: (canonical_spec("column", c.name, c.spec)["position"], c.id),
        )
        isheets.append(
            _drop_none(
                {
                    "name": isheet.name,
                    "title": _title(isheet),
                    "columns": [_column(column) for column in columns],
                }
            )
        )
    folders = sorted(c.name for c in children if c.kind == "folder")
    document: dict[str, Any] = {
        "kind": "Site",
        "name": site.name,
        "title": _title(site),
        "isheets": isheets or None,
        "folders": folders or None,
    }
    return _drop_none(document)


def _title(resource: LiveResource) -> str | None:
    title = resource.spec.get("title")
    return str(title) if title and title != resource.name else None


def _column(column: LiveResource) -> dict[str, Any]:
    spec = canonical_spec("column", column.name, column.spec)
    return _drop_none(
        {
            "name": column.name,
            "title": _title(column),
            "type": spec.get("type"),
            "choices": spec.get("choices"),
        }
    )


def _rule_document(rule: LiveResource) -> dict[str, Any]:
    spec = canonical_spec("rule", rule.name, rule.spec)
    trigger = _drop_none(dict(spec.get("trigger") or {}))
    conditions = [_drop_none(dict(c)) for c in spec.get("conditions") or []]
    actions = []
    for action in spec.get("actions") or []:
        action = dict(action)
        if action.get("type") == "send_to_external_service" and not action.get(
            "columns"
        ):
            action.pop("columns", None)
        if action.get("type") == "internal" and not action.get("params"):
            action.pop("params", None)
        actions.append(action)
    document: dict[str, Any] = {
        "kind": "Rule",
        "name": rule.name,
        "site": rule.scope,
        "description": spec.get("description"),
        "enabled": spec.get("enabled"),
        "trigger": trigger,
        "conditions": conditions or None,
        "actions": actions,
    }
    return _drop_none(document)

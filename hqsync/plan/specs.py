"""Normalised specs: the one shape in which desired and live resources compare.

Both sides pass through :func:`canonical_spec`, so a plan made right after an
apply is empty. The rules it applies, per kind:

- Every field is present, with its default filled in (``title`` defaults to
  the name; optional settings to ``null``).
- URLs are normalised (scheme and host lower case, default port dropped) and
  then redacted, so the spec never contains a credential. A URL that carries one
  is kept whole, encrypted, as the secret field ``url``.
- Ordered lists: the columns of an iSheet (their ``position``), the
  ``choices`` of a choice column, and the ``actions`` of a rule (they run in
  order). Sets, compared sorted: the folders of a site, the ``conditions``
  of a rule (all must hold), the ``value`` list of an ``in`` condition and
  the ``columns`` of an action (ids sent in the payload, no order promised).
- Folder paths lose repeated and trailing slashes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hqsync.config.secrets import SecretValue
from hqsync.plan.urls import normalize_url, redact_url
from hqsync.store import name_key, normalize_name

KIND_ORDER = ("service", "site", "isheet", "column", "folder", "rule")
"""The order in which an apply creates resources; deletions run in reverse."""

SECRET_FIELDS = ("url", "client_id", "client_secret", "key")
"""Secret fields of a service, stored encrypted and compared by fingerprint."""

SECRET_LABELS = {
    "url": "url (full, with credentials)",
    "client_id": "auth.client_id",
    "client_secret": "auth.client_secret",
    "key": "auth.key",
}
"""Configuration path of each secret field, for plan output."""

ResourceKey = tuple[str, str, str]
"""(kind, scope key, name key): how a desired resource finds its live twin."""


def resource_key(kind: str, scope: str, name: str) -> ResourceKey:
    """Return the key under which a resource is matched between desired and live."""
    return (kind, name_key(scope), name_key(name))


@dataclass
class DesiredResource:
    """One resource as the configuration wants it, with its secrets resolved."""

    kind: str
    scope: str
    name: str
    spec: dict[str, Any]
    secrets: dict[str, SecretValue] = field(default_factory=dict, repr=False)
    generate_key: bool = False
    parent: ResourceKey | None = None

    def __post_init__(self) -> None:
        self.scope = normalize_name(self.scope)
        self.name = normalize_name(self.name)

    @property
    def key(self) -> ResourceKey:
        """Return (kind, scope key, name key)."""
        return resource_key(self.kind, self.scope, self.name)

    @property
    def address(self) -> str:
        """Return the human-readable address, e.g. ``rule litigation/notify``."""
        return address(self.kind, self.scope, self.name)


def address(kind: str, scope: str, name: str) -> str:
    """Return ``kind scope/name`` (``kind name`` at the top level).

    A folder's name is already a path, so it follows its site with no second
    slash: ``folder litigation/Pleadings``.
    """
    if not scope:
        return f"{kind} {name}"
    separator = "" if name.startswith("/") else "/"
    return f"{kind} {scope}{separator}{name}"


def canonical_json(value: Any) -> str:
    """Serialise a JSON value with sorted keys, the form used to sort and hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize_folder(path: str) -> str:
    """Collapse repeated slashes and drop a trailing one (the root stays "/")."""
    collapsed = re.sub(r"/+", "/", "/" + path.strip())
    return collapsed.rstrip("/") or "/"


def canonical_spec(kind: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and normalise a spec of ``kind``; unknown fields are kept."""
    normalizer = _NORMALIZERS.get(kind)
    # Each normaliser builds a new dict, so the caller's spec is never changed.
    return normalizer(name, spec) if normalizer is not None else dict(spec)


_SCALARS = (str, bool, int, float)


def plain(value: Any) -> Any:
    """Return ``value`` with the types a JSON round trip through the store gives.

    Mapping keys become strings, tuples become lists, and values JSON has no
    type for (dates from YAML) become text, so a desired free-form value such
    as an internal action's ``params`` compares equal to its stored copy.
    """
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return str(value)


def _sort_key(value: Any) -> tuple[str, str]:
    # Orders a set of JSON values deterministically, mixed types included.
    return (type(value).__name__, canonical_json(value))


def _condition_key(condition: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(condition.get("column")),
        str(condition.get("field")),
        str(condition.get("operator")),
        repr(condition.get("value")),
    )


def _service(_name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    url = spec.get("url")
    timeout = spec.get("timeout_seconds")
    return {
        **spec,
        "url": redact_url(normalize_url(url)) if isinstance(url, str) else url,
        "status": spec.get("status", "active"),
        "auth": _auth(dict(spec.get("auth") or {})),
        "description": spec.get("description"),
        "ca_bundle": spec.get("ca_bundle"),
        "max_concurrency": spec.get("max_concurrency"),
        "timeout_seconds": float(timeout)
        if isinstance(timeout, int | float)
        else timeout,
    }


def _auth(auth: dict[str, Any]) -> dict[str, Any]:
    if auth.get("type") != "oauth2":
        return {**auth, "type": auth.get("type", "header")}
    token_url = auth.get("token_url")
    if isinstance(token_url, str):
        token_url = redact_url(normalize_url(token_url))
    return {
        **auth,
        "grant_type": auth.get("grant_type", "client_credentials"),
        "token_url": token_url,
        "client_id": auth.get("client_id"),
        "scope": auth.get("scope"),
        "token_auth_method": auth.get("token_auth_method", "client_secret_post"),
    }


def _title(name: str, spec: Mapping[str, Any]) -> Any:
    # Titles compare in NFC like names, so an NFD file matches an NFC store.
    title = spec.get("title") or name
    return normalize_name(title) if isinstance(title, str) else title


def _site(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {**spec, "title": _title(name, spec), "template": spec.get("template")}


def _isheet(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {**spec, "title": _title(name, spec)}


def _column(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    choices = spec.get("choices")
    return {
        **spec,
        "title": _title(name, spec),
        "type": spec.get("type", "text"),
        "choices": list(choices) if choices is not None else None,
        "position": int(spec.get("position", 0)),
    }


def _folder(_name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return dict(spec)


def _rule(_name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    actions = [_action(dict(action)) for action in spec.get("actions") or []]
    conditions = [
        _condition(dict(condition)) for condition in spec.get("conditions") or []
    ]
    return {
        **spec,
        "description": spec.get("description"),
        "enabled": spec.get("enabled", True),
        "trigger": _trigger(dict(spec.get("trigger") or {})),
        "conditions": sorted(conditions, key=_condition_key),
        "actions": actions,
        "rule_type": rule_type(actions),
    }


def _trigger(trigger: dict[str, Any]) -> dict[str, Any]:
    folder = trigger.get("folder")
    return {
        **trigger,
        "isheet": trigger.get("isheet"),
        "folder": normalize_folder(folder) if isinstance(folder, str) else folder,
    }


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    value = plain(condition.get("value"))
    if isinstance(value, list):
        value = sorted(value, key=_sort_key)
    return {
        **condition,
        "column": condition.get("column"),
        "field": condition.get("field"),
        "value": value,
    }


def _action(action: dict[str, Any]) -> dict[str, Any]:
    if action.get("type") == "send_to_external_service":
        return {**action, "columns": sorted(action.get("columns") or [])}
    return {**action, "params": plain(action.get("params") or {})}


def rule_type(actions: list[dict[str, Any]]) -> str:
    """Derive a rule's type from its actions: Internal, External or both."""
    kinds = {action.get("type") for action in actions}
    if kinds == {"internal"}:
        return "Internal"
    if kinds == {"send_to_external_service"}:
        return "External"
    return "Internal and External"


_NORMALIZERS = {
    "service": _service,
    "site": _site,
    "isheet": _isheet,
    "column": _column,
    "folder": _folder,
    "rule": _rule,
}

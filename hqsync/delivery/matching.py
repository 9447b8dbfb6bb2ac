"""Rule matching for an event: trigger, site, iSheet or folder, and conditions.

Rules come from the live store, not the YAML, so an event matches what was
applied. A condition on an iSheet column reads the event's ``values``, and
``previous_values`` too for ``changed`` and ``changed_to``. A condition on a
file reads the file's ``name``, ``extension`` or ``folder``. Values compare
as numbers when both sides are numbers and as exact strings otherwise, except
``contains``, which ignores case on strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hqsync.delivery.events import FileEvent, ISheetEvent
from hqsync.delivery.payload import document_extension
from hqsync.store import LiveResource, name_key

_MISSING = object()


@dataclass
class Catalog:
    """The live resources an event is matched against, indexed by name key."""

    sites: dict[str, LiveResource] = field(default_factory=dict)
    isheets: dict[tuple[str, str], LiveResource] = field(default_factory=dict)
    columns: dict[tuple[str, str, str], LiveResource] = field(default_factory=dict)
    folders: dict[tuple[str, str], LiveResource] = field(default_factory=dict)
    services: dict[str, LiveResource] = field(default_factory=dict)
    rules_by_site: dict[str, list[LiveResource]] = field(default_factory=dict)

    @classmethod
    def from_resources(cls, resources: Sequence[LiveResource]) -> Catalog:
        """Index live resources by the keys events and rules refer to them by."""
        catalog = cls()
        for resource in resources:
            catalog._add(resource)
        return catalog

    def _add(self, resource: LiveResource) -> None:
        name = name_key(resource.name)
        scope = name_key(resource.scope)
        if resource.kind == "site":
            self.sites[name] = resource
        elif resource.kind == "isheet":
            self.isheets[(scope, name)] = resource
        elif resource.kind == "column":
            site, _, isheet = scope.partition("/")
            self.columns[(site, isheet, name)] = resource
        elif resource.kind == "folder":
            self.folders[(scope, _folder_key(resource.name))] = resource
        elif resource.kind == "service":
            self.services[name] = resource
        elif resource.kind == "rule":
            self.rules_by_site.setdefault(scope, []).append(resource)


def _folder_key(path: str) -> str:
    return name_key(path.rstrip("/") or "/")


def matching_rules(
    catalog: Catalog, event: ISheetEvent | FileEvent
) -> list[LiveResource]:
    """Return the event site's enabled rules whose trigger and conditions hold."""
    site = name_key(event.site)
    return [
        rule
        for rule in catalog.rules_by_site.get(site, [])
        if rule.spec.get("enabled", True)
        and trigger_matches(rule.spec["trigger"], event)
        and all(condition_holds(c, event) for c in rule.spec.get("conditions") or [])
    ]


def trigger_matches(trigger: dict[str, Any], event: ISheetEvent | FileEvent) -> bool:
    """Check a rule's trigger against an event's type, iSheet or folder."""
    if trigger.get("type") != event.type:
        return False
    if isinstance(event, ISheetEvent):
        return name_key(str(trigger.get("isheet", ""))) == name_key(event.isheet)
    folder = trigger.get("folder")
    return folder is None or _folder_key(folder) == _folder_key(event.folder)


def condition_holds(condition: dict[str, Any], event: ISheetEvent | FileEvent) -> bool:
    """Evaluate one condition against an event."""
    operator = condition["operator"]
    expected = condition.get("value")
    current = _current_value(condition, event)

    if operator == "changed" or operator == "changed_to":
        if not isinstance(event, ISheetEvent) or current is _MISSING:
            return False
        previous = (event.previous_values or {}).get(condition["column"])
        if _same(current, previous):
            return False
        return operator == "changed" or _same(current, expected)

    value = None if current is _MISSING else current
    if operator == "equals":
        return _same(value, expected)
    if operator == "not_equals":
        return not _same(value, expected)
    if operator == "in":
        return any(_same(value, option) for option in expected or [])
    if operator == "contains":
        return _contains(value, expected)
    if operator == "is_empty":
        return _is_empty(value)
    if operator == "is_not_empty":
        return not _is_empty(value)
    raise ValueError(f"unknown condition operator {operator!r}")


def _current_value(condition: dict[str, Any], event: ISheetEvent | FileEvent) -> Any:
    if isinstance(event, ISheetEvent):
        return event.values.get(condition.get("column", ""), _MISSING)
    field_name = condition.get("field")
    if field_name == "name":
        return event.name
    if field_name == "extension":
        return document_extension(event.name)
    if field_name == "folder":
        return event.folder.rstrip("/") or "/"
    return _MISSING


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, list) or isinstance(right, list):
        return left == right
    return _text(left) == _text(right)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _contains(value: object, expected: object) -> bool:
    if isinstance(value, list):
        return any(_same(item, expected) for item in value)
    if value is None or expected is None:
        return False
    return _text(expected).casefold() in _text(value).casefold()


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False

"""The plan: an ordered list of changes plus what it was made against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hqsync.plan.specs import DesiredResource, address
from hqsync.store import LiveResource

Action = Literal["create", "update", "replace", "delete", "no-op", "unmanaged"]

SENSITIVE_CHANGED = "(sensitive value changed)"
SENSITIVE_MASK = "(sensitive)"


@dataclass(frozen=True)
class FieldChange:
    """One changed field of an update: a dotted path with its two values."""

    path: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass
class Change:
    """One planned action on one resource, with its field changes and reasons."""

    action: Action
    kind: str
    scope: str
    name: str
    desired: DesiredResource | None = None
    live: LiveResource | None = None
    before: dict[str, Any] | None = None  # the live spec, normalised
    after: dict[str, Any] | None = None  # the desired spec; None for a delete
    fields: list[FieldChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reason: str | None = None  # why a replace cannot be done in place

    @property
    def address(self) -> str:
        """Return the human-readable address, e.g. ``rule litigation/notify``."""
        return address(self.kind, self.scope, self.name)

    @property
    def rule_type(self) -> str | None:
        """Return the rule type of a rule change (after, else before)."""
        if self.kind != "rule":
            return None
        spec = self.after or self.before or {}
        value = spec.get("rule_type")
        return str(value) if value is not None else None

    @property
    def sensitive_paths(self) -> list[str]:
        """Return the paths whose values are secrets and never shown."""
        return [change.path for change in self.fields if change.sensitive]


@dataclass
class Plan:
    """Changes in apply order, with the serial and config checksum they assume."""

    instance: str
    store: str
    serial: int
    config_checksum: str
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)

    def count(self, action: Action) -> int:
        """Count the changes with ``action``."""
        return sum(1 for change in self.changes if change.action == action)

    @property
    def has_changes(self) -> bool:
        """Tell whether apply would change the store."""
        return any(
            change.action in ("create", "update", "replace", "delete")
            for change in self.changes
        )

    def summary(self) -> str:
        """Return the summary line: "Plan: N to create, M to update, ..."."""
        return (
            f"Plan: {self.count('create')} to create, {self.count('update')} to "
            f"update, {self.count('replace')} to replace, {self.count('delete')} "
            "to delete."
        )

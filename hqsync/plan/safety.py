"""Checks a plan must pass: the active-service limit, services in use, thresholds.

The limit and the in-use check fail at plan time, and no flag overrides them.
The change threshold fails at apply time unless ``--force`` is given, like
octoDNS's ``MAX_SAFE_*`` checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hqsync.config.models import Instance
from hqsync.errors import UnsafePlan
from hqsync.plan.model import Change, Plan
from hqsync.store import name_key


def check_plan_time(changes: list[Change], instance: Instance) -> None:
    """Raise UnsafePlan if the changes break the active limit or orphan a service."""
    _check_active_limit(changes, instance)
    _check_services_in_use(changes)


def threshold_violations(plan: Plan, instance: Instance) -> list[str]:
    """Describe each kind whose share of updated or deleted resources is too high."""
    messages = []
    limit = instance.safety.max_change_fraction
    for kind, label in (("service", "services"), ("rule", "rules")):
        existing = sum(
            1
            for change in plan.changes
            if change.kind == kind and change.live is not None and change.live.managed
        )
        touched = sum(
            1
            for change in plan.changes
            if change.kind == kind
            and change.action in ("update", "replace", "delete")
            and change.live is not None
        )
        if existing < max(instance.safety.min_existing, 1):
            continue
        if touched / existing > limit:
            messages.append(
                f"the plan updates or deletes {touched} of {existing} {label} "
                f"({touched / existing:.0%}), more than the safety threshold of "
                f"{limit:.0%}"
            )
    return messages


def _after_state(
    changes: list[Change], kind: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    # Yield (name, spec) of each resource of ``kind`` as it will be after apply.
    for change in changes:
        if change.kind != kind or change.action == "delete":
            continue
        spec = change.after if change.after is not None else change.before
        if spec is not None:
            yield change.name, spec


def _check_active_limit(changes: list[Change], instance: Instance) -> None:
    limit = instance.limits.max_active_services
    if limit is None:
        return
    active = sorted(
        name
        for name, spec in _after_state(changes, "service")
        if spec.get("status") == "active"
    )
    if len(active) > limit:
        raise UnsafePlan(
            f"the plan leaves {len(active)} active services, more than the "
            f"instance limit max_active_services: {limit}; set some to "
            "status: inactive or raise the limit"
        )


def _check_services_in_use(changes: list[Change]) -> None:
    active = {
        name_key(name)
        for name, spec in _after_state(changes, "service")
        if spec.get("status") == "active"
    }
    removed = {}
    for change in changes:
        if change.kind != "service" or change.before is None:
            continue
        was_active = change.before.get("status") == "active"
        if was_active and name_key(change.name) not in active:
            removed[name_key(change.name)] = change
    if not removed:
        return
    users: dict[str, list[str]] = {}
    for change in changes:
        if change.kind != "rule" or change.action == "delete":
            continue
        spec = change.after if change.after is not None else change.before
        if not spec or not spec.get("enabled", True):
            continue
        for action in spec.get("actions") or []:
            service = name_key(str(action.get("service", "")))
            if action.get("type") == "send_to_external_service" and service in removed:
                users.setdefault(service, []).append(f"{change.scope}/{change.name}")
    problems = []
    for service, rules in sorted(users.items()):
        verb = "deletes" if removed[service].action == "delete" else "deactivates"
        problems.append(
            f"the plan {verb} service {removed[service].name}, which enabled rules "
            f"still use: {', '.join(sorted(rules))}"
        )
    if problems:
        raise UnsafePlan(
            "; ".join(problems) + "; disable or change those rules in the same plan"
        )

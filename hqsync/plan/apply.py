"""Apply a plan to the store in one transaction under the instance lock.

Deletions run first, in reverse kind order (rules before the sites they sit
on), then creates, updates and replacements in kind order, so a parent always
exists before its children. Any error rolls the whole transaction back, and
the store serial is bumped only by an apply that changed something.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets as random_source
import socket
from dataclasses import dataclass, field

import sqlalchemy as sa

from hqsync.config.models import Instance
from hqsync.errors import PlanError, StalePlan, UnsafePlan
from hqsync.plan.model import Change, Plan
from hqsync.plan.safety import threshold_violations
from hqsync.plan.specs import ResourceKey, resource_key
from hqsync.store import Store

log = logging.getLogger(__name__)

APPLY_LOCK = "apply"
GENERATED_KEY_BYTES = 32


@dataclass
class ApplyResult:
    """Counts of an apply; ``generated_keys`` are shown to the user this once."""

    serial: int
    created: int = 0
    updated: int = 0
    replaced: int = 0
    deleted: int = 0
    generated_keys: dict[str, str] = field(default_factory=dict, repr=False)


def lock_holder() -> str:
    """Describe this process for the lock row: user, host and pid."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def apply_plan(
    store: Store,
    plan: Plan,
    instance: Instance,
    *,
    force: bool = False,
    lock_timeout_s: float = 60.0,
    holder: str | None = None,
) -> ApplyResult:
    """Apply ``plan`` exactly; raise StalePlan if the store changed since."""
    violations = threshold_violations(plan, instance)
    if violations and not force:
        raise UnsafePlan("; ".join(violations) + "; rerun with --force to apply anyway")
    with (
        store.lock(APPLY_LOCK, holder or lock_holder(), lock_timeout_s),
        store.begin() as connection,
    ):
        current = store.serial(connection)
        if current != plan.serial:
            raise StalePlan(
                f"the store changed since the plan was made (serial {plan.serial}, "
                f"now {current}); make a new plan"
            )
        result = _execute(store, connection, plan)
        if plan.has_changes:
            result.serial = store.bump_serial(connection)
    log.info(
        "applied plan to %s: %s created, %s updated, %s replaced, %s deleted, "
        "serial %s",
        plan.store,
        result.created,
        result.updated,
        result.replaced,
        result.deleted,
        result.serial,
    )
    return result


def _execute(store: Store, connection: sa.Connection, plan: Plan) -> ApplyResult:
    result = ApplyResult(serial=plan.serial)
    ids: dict[ResourceKey, int] = {}
    for change in plan.changes:
        if change.live is not None:
            ids[change.live.key] = change.live.id

    # Deletions first, children before parents (the plan lists them that way).
    for change in plan.changes:
        if change.action in ("delete", "replace") and change.live is not None:
            store.delete_resource(connection, change.live.id)
            ids.pop(change.live.key, None)
            result.deleted += change.action == "delete"

    for change in plan.changes:
        if change.action == "create" or change.action == "replace":
            ids[_key(change)] = _insert(store, connection, change, ids, result)
            result.created += change.action == "create"
            result.replaced += change.action == "replace"
        elif change.action == "update":
            _update(store, connection, change, result)
            result.updated += 1
    return result


def _key(change: Change) -> ResourceKey:
    return resource_key(change.kind, change.scope, change.name)


def _secrets_for(store: Store, change: Change, result: ApplyResult) -> dict[str, str]:
    desired = change.desired
    assert desired is not None
    values = {name: value.reveal() for name, value in desired.secrets.items()}
    if desired.generate_key:
        existing = store.decrypt_secrets(change.live) if change.live else {}
        if change.action != "replace" and "key" in existing:
            values["key"] = existing["key"]
        else:
            values["key"] = random_source.token_urlsafe(GENERATED_KEY_BYTES)
            result.generated_keys[desired.name] = values["key"]
    return values


def _insert(
    store: Store,
    connection: sa.Connection,
    change: Change,
    ids: dict[ResourceKey, int],
    result: ApplyResult,
) -> int:
    desired = change.desired
    assert desired is not None
    parent_id = None
    if desired.parent is not None:
        parent_id = ids.get(desired.parent)
        if parent_id is None:
            raise PlanError(
                f"cannot create {desired.address}: its parent does not exist"
            )
    return store.insert_resource(
        connection,
        kind=desired.kind,
        scope=desired.scope,
        name=desired.name,
        spec=desired.spec,
        parent_id=parent_id,
        secrets=_secrets_for(store, change, result) or None,
    )


def _update(
    store: Store, connection: sa.Connection, change: Change, result: ApplyResult
) -> None:
    desired, live = change.desired, change.live
    assert desired is not None and live is not None
    store.update_resource(
        connection,
        live.id,
        spec=desired.spec,
        name=desired.name,
        secrets=_secrets_for(store, change, result) or None,
        managed=True,
    )

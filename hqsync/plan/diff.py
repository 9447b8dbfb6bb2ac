"""Diff desired resources against live ones into ordered changes.

Resources match on (kind, scope, name) compared after NFC normalisation and
case folding. A changed field is an update in place. Three changes cannot be
made in place, so the resource is replaced: deleted, then created with a new
id. They are a column's ``type`` (existing item values would not convert), a
rule's trigger ``type``, and a rule that moves to another site. A rule
belongs to its site, so a delete in one site and a create of the same rule
name in another become one replace.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deepdiff import DeepDiff

from hqsync.errors import PlanError
from hqsync.plan.model import SENSITIVE_MASK, Action, Change, FieldChange
from hqsync.plan.specs import (
    KIND_ORDER,
    SECRET_LABELS,
    DesiredResource,
    ResourceKey,
    canonical_spec,
)
from hqsync.plan.urls import url_host
from hqsync.store import Cipher, LiveResource, name_key


def diff_resources(
    desired: list[DesiredResource],
    live: list[LiveResource],
    *,
    cipher: Cipher,
    prune: bool,
) -> list[Change]:
    """Return every change (no-ops included) in display order."""
    desired_by_key = _index_desired(desired)
    live_by_key = {resource.key: resource for resource in live}

    changes: list[Change] = []
    for key, wanted in desired_by_key.items():
        twin = live_by_key.get(key)
        if twin is None:
            changes.append(_create(wanted))
        else:
            changes.append(_compare(wanted, twin, cipher))
    for key, existing in live_by_key.items():
        if key not in desired_by_key:
            changes.append(_remove(existing, prune))

    changes = _pair_moved_rules(changes)
    return order_changes(changes)


def _index_desired(
    desired: list[DesiredResource],
) -> dict[ResourceKey, DesiredResource]:
    index: dict[ResourceKey, DesiredResource] = {}
    for resource in desired:
        other = index.get(resource.key)
        if other is not None:
            raise PlanError(
                f"{resource.address} and {other.address} have the same name once "
                "case and Unicode normalisation are ignored; rename one"
            )
        index[resource.key] = resource
    return index


def _create(resource: DesiredResource) -> Change:
    return Change(
        "create",
        resource.kind,
        resource.scope,
        resource.name,
        desired=resource,
        after=resource.spec,
    )


def _remove(resource: LiveResource, prune: bool) -> Change:
    action: Action = "delete" if resource.managed or prune else "unmanaged"
    before = canonical_spec(resource.kind, resource.name, resource.spec)
    return Change(
        action,
        resource.kind,
        resource.scope,
        resource.name,
        live=resource,
        before=before,
    )


def _compare(desired: DesiredResource, live: LiveResource, cipher: Cipher) -> Change:
    # Apply stores the normalised spec, so an equal spec (the common case)
    # needs no normalising; a spec edited outside hqsync is normalised first.
    if live.spec == desired.spec:
        before = live.spec
    else:
        before = canonical_spec(live.kind, live.name, live.spec)
    fields = field_changes(before, desired.spec)
    if desired.name != live.name:
        fields.insert(0, FieldChange("name", live.name, desired.name))
    if not live.managed:
        fields.insert(0, FieldChange("managed", False, True))
    fields.extend(_secret_changes(desired, live, cipher))
    change = Change(
        "update" if fields else "no-op",
        desired.kind,
        desired.scope,
        desired.name,
        desired=desired,
        live=live,
        before=before,
        after=desired.spec,
        fields=fields,
    )
    change.reason = _replace_reason(desired.kind, before, desired.spec)
    if change.reason is not None:
        change.action = "replace"
    if desired.kind == "service" and fields:
        change.notes.extend(_new_host_notes(before, desired.spec, fields))
    return change


def _secret_changes(
    desired: DesiredResource, live: LiveResource, cipher: Cipher
) -> list[FieldChange]:
    wanted = {
        field: cipher.fingerprint(field, value.reveal())
        for field, value in desired.secrets.items()
    }
    changes = []
    for field in sorted(set(wanted) | set(live.fingerprints)):
        if field == "key" and desired.generate_key and "key" in live.fingerprints:
            # A generated key is kept while the config still requests a generated key.
            continue
        if wanted.get(field) != live.fingerprints.get(field):
            changes.append(
                FieldChange(
                    SECRET_LABELS.get(field, field),
                    SENSITIVE_MASK if field in live.fingerprints else None,
                    SENSITIVE_MASK if field in wanted else None,
                    sensitive=True,
                )
            )
    if desired.generate_key and "key" not in live.fingerprints:
        changes.append(FieldChange("auth.key", None, SENSITIVE_MASK, sensitive=True))
    return changes


def _replace_reason(
    kind: str, before: dict[str, Any], after: dict[str, Any]
) -> str | None:
    if kind == "column" and before.get("type") != after.get("type"):
        return (
            "a column's type cannot change in place: existing values would not convert"
        )
    if kind == "rule":
        old = (before.get("trigger") or {}).get("type")
        new = (after.get("trigger") or {}).get("type")
        if old != new:
            return "a rule's trigger type cannot change in place"
    return None


def _new_host_notes(
    before: dict[str, Any], after: dict[str, Any], fields: list[FieldChange]
) -> list[str]:
    changed_secrets = {change.path for change in fields if change.sensitive}
    notes = []
    old_host = url_host(str(before.get("url") or ""))
    new_host = url_host(str(after.get("url") or ""))
    auth = after.get("auth") or {}
    credential = "auth.client_secret" if auth.get("type") == "oauth2" else "auth.key"
    if (
        old_host != new_host
        and credential not in changed_secrets
        and auth.get("type") != "oauth2"
    ):
        notes.append(
            f"the unchanged {credential} will now be sent to a new host: "
            f"{old_host} -> {new_host}"
        )
    if auth.get("type") == "oauth2" and credential not in changed_secrets:
        old_token = url_host(str((before.get("auth") or {}).get("token_url") or ""))
        new_token = url_host(str(auth.get("token_url") or ""))
        if old_token != new_token:
            notes.append(
                f"the unchanged {credential} will now be sent to a new token host: "
                f"{old_token} -> {new_token}"
            )
    return notes


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """List changed fields with deepdiff; a changed list is reported whole."""
    if before == after:
        return []
    diff = DeepDiff(before, after, view="tree", verbose_level=2)
    paths: set[tuple[str, ...]] = set()
    for items in diff.values():
        for item in items:
            paths.add(_field_path(item.path(output_format="list")))
    # A changed mapping that is also reported field by field is shown once.
    kept = sorted(
        path
        for path in paths
        if not any(path[: len(o)] == o for o in paths if o != path)
    )
    return [
        FieldChange(".".join(path), _lookup(before, path), _lookup(after, path))
        for path in kept
    ]


def _field_path(path: Iterable[Any]) -> tuple[str, ...]:
    # Stop at the first list index: lists are shown whole, which reads better
    # than "conditions[2].value" when an item moved.
    result: list[str] = []
    for part in path:
        if not isinstance(part, str):
            break
        result.append(part)
    return tuple(result)


def _lookup(spec: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = spec
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _pair_moved_rules(changes: list[Change]) -> list[Change]:
    creates: dict[str, list[Change]] = {}
    for change in changes:
        if change.kind == "rule" and change.action == "create":
            creates.setdefault(name_key(change.name), []).append(change)
    result = []
    paired: set[int] = set()
    for change in changes:
        if change.kind != "rule" or change.action != "delete" or change.live is None:
            continue
        candidates = creates.get(name_key(change.name), [])
        if len(candidates) != 1 or id(candidates[0]) in paired:
            continue
        create = candidates[0]
        paired.update({id(create), id(change)})
        moved = Change(
            "replace",
            "rule",
            create.scope,
            create.name,
            desired=create.desired,
            live=change.live,
            before=change.before,
            after=create.after,
            fields=[
                FieldChange("site", change.scope, create.scope),
                *field_changes(change.before or {}, create.after or {}),
            ],
            reason="a rule cannot move to another site in place",
        )
        result.append(moved)
    result.extend(change for change in changes if id(change) not in paired)
    return result


def order_changes(changes: list[Change]) -> list[Change]:
    """Order changes: kind order for the rest, then deletions in reverse kind order."""
    rank = {kind: index for index, kind in enumerate(KIND_ORDER)}

    def forward(change: Change) -> tuple[int, str, str]:
        return (
            rank.get(change.kind, len(rank)),
            name_key(change.scope),
            name_key(change.name),
        )

    def backward(change: Change) -> tuple[int, str, str]:
        kind_rank, scope, name = forward(change)
        return (-kind_rank, scope, name)

    deletes = [change for change in changes if change.action == "delete"]
    unmanaged = [change for change in changes if change.action == "unmanaged"]
    rest = [
        change for change in changes if change.action not in ("delete", "unmanaged")
    ]
    return (
        sorted(rest, key=forward)
        + sorted(deletes, key=backward)
        + sorted(unmanaged, key=forward)
    )

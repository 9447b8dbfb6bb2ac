"""Drift: changes made to the live state outside hqsync show up in the plan."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hqsync.plan import Change, Plan
from hqsync.store import Store
from hqsync.store.schema import resources

from .helpers import ENVIRON, ConfigDir, converge, plan_for


def _only_change(plan: Plan) -> Change:
    changes = [change for change in plan.changes if change.action != "no-op"]
    assert len(changes) == 1, [change.address for change in changes]
    return changes[0]


def _set_spec(store: Store, kind: str, name: str, **fields: Any) -> None:
    (live,) = [r for r in store.read_resources() if r.kind == kind and r.name == name]
    with store.begin() as connection:
        store.update_resource(
            connection,
            live.id,
            spec={**live.spec, **fields},
            secrets=None if live.secrets_token is None else store.decrypt_secrets(live),
        )


def test_drift_edited_field_is_update(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    _set_spec(sqlite_store, "rule", "new-matter", enabled=False)
    change = _only_change(plan_for(config, sqlite_store))
    assert change.action == "update"
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("enabled", False, True)
    ]


def test_drift_deleted_resource_is_create(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    (folder,) = [r for r in sqlite_store.read_resources() if r.name == "/Pleadings"]
    with sqlite_store.begin() as connection:
        sqlite_store.delete_resource(connection, folder.id)
    change = _only_change(plan_for(config, sqlite_store))
    assert change.action == "create"
    assert change.address == "folder litigation/Pleadings"


def test_drift_added_managed_resource_is_delete(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    with sqlite_store.begin() as connection:
        sqlite_store.insert_resource(
            connection, kind="site", scope="", name="stray", spec={"title": "stray"}
        )
    change = _only_change(plan_for(config, sqlite_store))
    assert change.action == "delete"
    assert change.name == "stray"


def test_drift_unmanaged_resource_left_alone(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    with sqlite_store.begin() as connection:
        sqlite_store.insert_resource(
            connection, kind="site", scope="", name="theirs", spec={}, managed=False
        )
    plan = plan_for(config, sqlite_store)
    change = _only_change(plan)
    assert change.action == "unmanaged"
    assert not plan.has_changes


def test_drift_unmanaged_resource_pruned(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    with sqlite_store.begin() as connection:
        sqlite_store.insert_resource(
            connection, kind="site", scope="", name="theirs", spec={}, managed=False
        )
    basic_config.set_project("prune: true")
    change = _only_change(plan_for(basic_config.load(ENVIRON), sqlite_store))
    assert change.action == "delete"


def test_drift_unmanaged_resource_in_config_adopted(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    with sqlite_store.begin() as connection:
        sqlite_store.insert_resource(
            connection, kind="site", scope="", name="theirs", spec={}, managed=False
        )
    config_dir.write("site.yaml", "kind: Site\nname: theirs\n")
    config = config_dir.load()
    change = _only_change(plan_for(config, sqlite_store))
    converge(config, sqlite_store)
    (live,) = sqlite_store.read_resources()
    assert change.action == "update"
    assert change.fields[0].path == "managed"
    assert live.managed is True


def test_drift_changed_secret_is_sensitive_update(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    (intake,) = [r for r in sqlite_store.read_resources() if r.name == "intake"]
    with sqlite_store.begin() as connection:
        sqlite_store.update_resource(
            connection,
            intake.id,
            spec=intake.spec,
            secrets={"key": "changed-elsewhere"},
        )
    change = _only_change(plan_for(config, sqlite_store))
    (field,) = change.fields
    assert field.path == "auth.key"
    assert field.sensitive is True


def test_drift_unnormalised_live_url_is_no_change(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    _set_spec(
        sqlite_store,
        "service",
        "intake",
        url="HTTPS://Hooks.Example.INVALID:443/intake",
    )
    plan = plan_for(config, sqlite_store)
    assert not plan.has_changes


def test_drift_column_order_is_update(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    _set_spec(sqlite_store, "column", "code", position=0)
    change = _only_change(plan_for(config, sqlite_store))
    assert change.kind == "column"
    assert [(f.path, f.before, f.after) for f in change.fields] == [("position", 0, 2)]


def test_drift_condition_order_is_no_change(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    (rule,) = [r for r in sqlite_store.read_resources() if r.name == "closed-matter"]
    _set_spec(
        sqlite_store, "rule", "closed-matter", conditions=rule.spec["conditions"][::-1]
    )
    assert not plan_for(config, sqlite_store).has_changes


def test_drift_raw_row_edit_detected(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    config = basic_config.load(ENVIRON)
    converge(config, sqlite_store)
    with sqlite_store.begin() as connection:
        connection.execute(
            sa.update(resources)
            .where(resources.c.kind == "site")
            .values(spec={"title": "Edited in the instance"})
        )
    change = _only_change(plan_for(config, sqlite_store))
    assert change.fields[0].after == "Litigation hub"

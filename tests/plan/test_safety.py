"""Safety checks: change threshold, services in use, the active-service limit."""

from __future__ import annotations

import pytest

from hqsync.errors import UnsafePlan
from hqsync.plan import apply_plan
from hqsync.store import Store

from .helpers import ConfigDir, converge, plan_for


def _services(count: int, *, inactive: int = 0) -> str:
    documents = []
    for index in range(count):
        status = "inactive" if index < inactive else "active"
        documents.append(
            f"kind: ExternalService\nname: svc-{index:02d}\n"
            f"url: https://svc{index}.example.invalid/hook\nstatus: {status}\n"
            "auth: {type: header, key: {generate: true}}\n"
        )
    return "---\n".join(documents)


def test_apply_threshold_rejects_large_delete(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(10))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(6))
    config = config_dir.load()
    plan = plan_for(config, sqlite_store)
    with pytest.raises(UnsafePlan, match=r"4 of 10 services \(40%\)"):
        apply_plan(sqlite_store, plan, config.instance)
    assert plan.warnings


def test_apply_threshold_force_overrides(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(10))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(6))
    result = converge(config_dir.load(), sqlite_store, force=True)
    assert result.deleted == 4


def test_apply_threshold_allows_at_limit(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(10))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(7))
    assert converge(config_dir.load(), sqlite_store).deleted == 3


def test_apply_threshold_ignores_small_instances(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(9))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(1))
    assert converge(config_dir.load(), sqlite_store).deleted == 8


def test_apply_threshold_from_instance_safety(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.set_project("safety: {max_change_fraction: 0.5, min_existing: 4}")
    config_dir.write("services.yaml", _services(4))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(1))
    config = config_dir.load()
    with pytest.raises(UnsafePlan, match="3 of 4 services"):
        apply_plan(sqlite_store, plan_for(config, sqlite_store), config.instance)


RULE_USING = """
kind: Site
name: s
isheets: [{{name: items, columns: [{{name: c}}]}}]
---
kind: Rule
name: {name}
site: s
enabled: {enabled}
trigger: {{type: isheet_item_added, isheet: items}}
actions: [{{type: send_to_external_service, service: svc-00}}]
"""


def test_plan_rejects_deactivating_used_service(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(2))
    config_dir.write("site.yaml", RULE_USING.format(name="notify", enabled="true"))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(2, inactive=1))
    with pytest.raises(UnsafePlan, match=r"deactivates service svc-00.*s/notify"):
        plan_for(config_dir.load(), sqlite_store)


def test_plan_allows_deactivating_with_rule_disabled(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(2))
    config_dir.write("site.yaml", RULE_USING.format(name="notify", enabled="true"))
    converge(config_dir.load(), sqlite_store)
    config_dir.write("services.yaml", _services(2, inactive=1))
    config_dir.write("site.yaml", RULE_USING.format(name="notify", enabled="false"))
    assert converge(config_dir.load(), sqlite_store).updated == 2


def test_plan_rejects_deleting_service_unmanaged_rule_uses(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("services.yaml", _services(2))
    config_dir.write("site.yaml", "kind: Site\nname: s\n")
    converge(config_dir.load(), sqlite_store)
    (site,) = [r for r in sqlite_store.read_resources() if r.kind == "site"]
    with sqlite_store.begin() as connection:
        sqlite_store.insert_resource(
            connection,
            kind="rule",
            scope="s",
            name="theirs",
            parent_id=site.id,
            managed=False,
            spec={
                "enabled": True,
                "trigger": {"type": "file_added"},
                "actions": [{"type": "send_to_external_service", "service": "svc-00"}],
            },
        )
    config_dir.write("services.yaml", _services(2)[_services(2).index("---") + 4 :])
    with pytest.raises(UnsafePlan, match=r"deletes service svc-00.*s/theirs"):
        plan_for(config_dir.load(), sqlite_store)


def test_plan_active_limit_counts_unmanaged_services(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.set_project("limits: {max_active_services: 2}")
    with sqlite_store.begin() as connection:
        sqlite_store.insert_resource(
            connection,
            kind="service",
            scope="",
            name="theirs",
            managed=False,
            spec={"url": "https://x.example.invalid/", "status": "active"},
        )
    config_dir.write("services.yaml", _services(2))
    with pytest.raises(UnsafePlan, match=r"3 active services.*max_active_services: 2"):
        plan_for(config_dir.load(), sqlite_store)


def test_plan_active_limit_ignores_inactive(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.set_project("limits: {max_active_services: 2}")
    config_dir.write("services.yaml", _services(4, inactive=2))
    assert converge(config_dir.load(), sqlite_store).created == 4

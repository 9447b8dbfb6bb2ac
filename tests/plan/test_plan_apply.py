"""Plan, apply, and plan again: the second plan is empty."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from hqsync.config import load_config
from hqsync.errors import StoreError
from hqsync.plan import apply_plan
from hqsync.store import Store, open_store

from .helpers import (
    CONFIGS,
    ENVIRON,
    ConfigDir,
    converge,
    plan_for,
    sandbox_environ,
)


def test_plan_configs_folder_empty_after_apply(store_url: str, tmp_path: Path) -> None:
    config = load_config(CONFIGS, environ=sandbox_environ())
    with open_store(store_url, key_file=tmp_path / "k") as store:
        first = plan_for(config, store)
        result = apply_plan(store, first, config.instance)
        second = plan_for(config, store)
    assert first.count("create") == len(first.changes)
    assert result.created == len(first.changes)
    assert result.serial == 1
    assert not second.has_changes
    assert {change.action for change in second.changes} == {"no-op"}


def test_plan_basic_config_empty_after_apply(
    basic_config: ConfigDir, store_url: str, tmp_path: Path
) -> None:
    config = basic_config.load(ENVIRON)
    with open_store(store_url, key_file=tmp_path / "k") as store:
        converge(config, store)
        again = plan_for(config, store)
    assert not again.has_changes


def test_plan_orders_kinds(basic_config: ConfigDir, sqlite_store: Store) -> None:
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    kinds = [change.kind for change in plan.changes]
    order = ["service", "site", "isheet", "column", "folder", "rule"]
    assert kinds == sorted(kinds, key=order.index)


def test_plan_deletions_in_reverse_order(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    basic_config.remove("rules.yaml")
    basic_config.remove("site.yaml")
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    deleted = [change.kind for change in plan.changes if change.action == "delete"]
    assert deleted[0] == "rule"
    assert deleted[-1] == "site"
    converge(basic_config.load(ENVIRON), sqlite_store)
    kinds = {resource.kind for resource in sqlite_store.read_resources()}
    assert kinds == {"service"}


def test_plan_leading_zero_value_stays_string(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    (rule,) = [r for r in sqlite_store.read_resources() if r.name == "closed-matter"]
    values = [condition["value"] for condition in rule.spec["conditions"]]
    assert "00123" in values
    assert 123 not in values


def test_plan_nfd_config_matches_nfc_live(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    nfc = unicodedata.normalize("NFC", "Zürich-Büro")
    nfd = unicodedata.normalize("NFD", "Zürich-Büro")
    config_dir.write("site.yaml", f"kind: Site\nname: {nfc}\n")
    converge(config_dir.load(), sqlite_store)
    config_dir.write("site.yaml", f"kind: Site\nname: {nfd}\n")
    plan = plan_for(config_dir.load(), sqlite_store)
    assert not plan.has_changes


def test_plan_case_rename_is_update(config_dir: ConfigDir, sqlite_store: Store) -> None:
    config_dir.write("site.yaml", "kind: Site\nname: Intake\ntitle: T\n")
    converge(config_dir.load(), sqlite_store)
    config_dir.write("site.yaml", "kind: Site\nname: intake\ntitle: T\n")
    plan = plan_for(config_dir.load(), sqlite_store)
    (change,) = [c for c in plan.changes if c.action != "no-op"]
    assert change.action == "update"
    assert [field.path for field in change.fields] == ["name"]


def test_apply_generated_key_shown_once(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write(
        "services.yaml",
        """
        kind: ExternalService
        name: archive
        url: https://archive.example.invalid/hook
        auth: {type: header, key: {generate: true}}
        """,
    )
    config = config_dir.load()
    first = converge(config, sqlite_store)
    second_plan = plan_for(config, sqlite_store)
    (live,) = sqlite_store.read_resources()
    assert list(first.generated_keys) == ["archive"]
    assert sqlite_store.decrypt_secrets(live)["key"] == first.generated_keys["archive"]
    assert not second_plan.has_changes


def test_apply_failure_leaves_store_unchanged(
    basic_config: ConfigDir,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = basic_config.load(ENVIRON)
    with open_store(store_url, key_file=tmp_path / "k") as store:
        plan = plan_for(config, store)
        original = Store.insert_resource
        calls = {"count": 0}

        def failing_insert(self: Store, *args: object, **kwargs: object) -> int:
            calls["count"] += 1
            if calls["count"] == 6:
                raise StoreError("injected failure")
            return original(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Store, "insert_resource", failing_insert)
        with pytest.raises(StoreError, match="injected failure"):
            apply_plan(store, plan, config.instance)
        monkeypatch.setattr(Store, "insert_resource", original)
        assert store.read_resources() == []
        assert store.serial() == 0
        # The lock was released, so the same plan now applies.
        apply_plan(store, plan, config.instance)
        assert store.serial() == 1


def test_apply_failure_mid_update_keeps_old_state(
    basic_config: ConfigDir, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    before = sqlite_store.read_resources()
    basic_config.write("site.yaml", SITE_RETITLED)
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)

    def failing_update(*_args: object, **_kwargs: object) -> int:
        raise StoreError("injected failure")

    monkeypatch.setattr(Store, "update_resource", failing_update)
    with pytest.raises(StoreError):
        apply_plan(sqlite_store, plan, basic_config.load(ENVIRON).instance)
    assert sqlite_store.read_resources() == before
    assert sqlite_store.serial() == 1


SITE_RETITLED = """
kind: Site
name: litigation
title: Litigation (renamed)
isheets:
  - name: matters
    columns:
      - {name: matter_id, title: Matter ID}
      - {name: status, type: choice, choices: [Open, Closed]}
      - {name: code}
folders: [/Contracts, /Pleadings]
"""

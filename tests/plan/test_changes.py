"""Replacements, notes on credentials moving host, and rule types in plans."""

from __future__ import annotations

from hqsync.plan import Plan
from hqsync.store import Store

from .helpers import ENVIRON, RULES, SITE, ConfigDir, converge, plan_for


def _changed(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action, c.address) for c in plan.changes if c.action != "no-op"]


def test_plan_column_type_change_is_replace(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    basic_config.write(
        "site.yaml", SITE.replace("{name: code}", "{name: code, type: number}")
    )
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    (change,) = [c for c in plan.changes if c.action != "no-op"]
    assert change.action == "replace"
    assert change.reason is not None and "type" in change.reason
    converge(basic_config.load(ENVIRON), sqlite_store)
    assert not plan_for(basic_config.load(ENVIRON), sqlite_store).has_changes


def test_plan_rule_moved_site_is_replace(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    basic_config.write("other.yaml", SITE.replace("name: litigation", "name: other"))
    converge(basic_config.load(ENVIRON), sqlite_store)
    moved = RULES.replace(
        "name: new-matter\nsite: litigation", "name: new-matter\nsite: other"
    )
    basic_config.write("rules.yaml", moved)
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    assert _changed(plan) == [("replace", "rule other/new-matter")]
    result = converge(basic_config.load(ENVIRON), sqlite_store)
    assert result.replaced == 1
    assert not plan_for(basic_config.load(ENVIRON), sqlite_store).has_changes


def test_plan_url_host_change_notes_credential(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    basic_config.write(
        "services.yaml",
        (basic_config.root / "services.yaml")
        .read_text()
        .replace("hooks.example.invalid", "elsewhere.example.invalid"),
    )
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    (change,) = [c for c in plan.changes if c.action != "no-op"]
    assert any("new host" in note for note in change.notes)
    assert any("elsewhere.example.invalid" in note for note in change.notes)


def test_plan_host_and_key_change_no_note(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    basic_config.write(
        "services.yaml",
        (basic_config.root / "services.yaml")
        .read_text()
        .replace("hooks.example.invalid", "elsewhere.example.invalid"),
    )
    environ = {**ENVIRON, "INTAKE_KEY": "a-new-key"}
    plan = plan_for(basic_config.load(environ), sqlite_store)
    (change,) = [c for c in plan.changes if c.action != "no-op"]
    assert change.notes == []


def test_plan_rule_type_on_rule_changes(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    types = {c.name: c.rule_type for c in plan.changes if c.kind == "rule"}
    assert types == {"closed-matter": "Internal and External", "new-matter": "External"}


def test_plan_secret_url_redacted_in_spec(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    plan = plan_for(basic_config.load(ENVIRON), sqlite_store)
    (crm,) = [c for c in plan.changes if c.name == "crm"]
    assert crm.after is not None
    assert crm.after["url"] == "https://crm.example.invalid/notify?sig=REDACTED"

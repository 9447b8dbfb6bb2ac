"""``hqsync template import``: service mapping, the written Site, apply, rejections."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from hqsync.config import load_config
from hqsync.config.files import MAX_TEMPLATE_FILE_BYTES
from hqsync.config.models import SendToExternalService, SiteTemplate
from hqsync.plan.specs import canonical_spec

from .helpers import B_INTAKE_KEY, CANARIES, EXTERNAL_RULES, SERVICE_MAP, Instances

SECRETS_OF_B = ("crm-b-secret", "b-sig", B_INTAKE_KEY)

MAP_ARGS = ("--map-service", "crm=crm-b", "--map-service", "intake=intake-b")


def _import(
    instances: Instances, template_file: Path, *args: str, site: str = "matters"
) -> tuple[int, str]:
    result = instances.run(
        instances.b,
        "template",
        "import",
        str(template_file),
        "--site",
        site,
        *args,
    )
    return result.returncode, result.output


def _renamed(template: SiteTemplate) -> SiteTemplate:
    # The template as B should export it: the same, with B's service names.
    rules = []
    for rule in template.rules:
        actions = [
            action.model_copy(update={"service": SERVICE_MAP[action.service]})
            if isinstance(action, SendToExternalService)
            else action
            for action in rule.actions
        ]
        rules.append(rule.model_copy(update={"actions": actions}))
    dependencies = [
        d.model_copy(update={"service": SERVICE_MAP[d.service]})
        for d in template.dependencies
    ]
    return template.model_copy(update={"rules": rules, "dependencies": dependencies})


def _load_template(path: Path) -> SiteTemplate:
    return SiteTemplate.model_validate(yaml.safe_load(path.read_text("utf-8")))


def _live_rules(instances: Instances, name: str) -> dict[str, dict[str, object]]:
    return {
        r.name: canonical_spec("rule", r.name, r.spec)
        for r in instances.live(name)
        if r.kind == "rule" and r.scope == "matters"
    }


@pytest.fixture
def imported(instances: Instances, template_file: Path) -> Instances:
    """Import and apply site ``matters`` into instance ``b``, both services mapped."""
    code, output = _import(
        instances, template_file, *MAP_ARGS, "--apply", "--auto-approve"
    )
    assert code == 0, output
    return instances


# A working import ------------------------------------------------------------


def test_import_apply_then_plan_is_empty(imported: Instances) -> None:
    result = imported.run(imported.b, "plan", "--detailed-exitcode")
    assert result.returncode == 0, result.output


def test_import_apply_shows_plan_first(
    instances: Instances, template_file: Path
) -> None:
    code, output = _import(
        instances, template_file, *MAP_ARGS, "--apply", "--auto-approve"
    )
    assert code == 0, output
    assert output.index("+ rule matters/closed-to-crm") < output.index("Apply complete")


def test_import_export_from_b_matches_a(
    imported: Instances, template_file: Path
) -> None:
    out = imported.root / "from-b.yaml"
    result = imported.run(
        imported.b, "template", "export", "matters", "--out", str(out)
    )
    assert result.returncode == 0, result.output
    assert _load_template(out) == _renamed(_load_template(template_file))


def test_import_gives_b_its_own_ids(imported: Instances) -> None:
    a_ids = {(r.kind, r.scope, r.name): r.id for r in imported.live("a")}
    b_ids = {(r.kind, r.scope, r.name): r.id for r in imported.live("b")}
    shared = [key for key in b_ids if key in a_ids and key[0] != "service"]
    assert len(shared) == 15  # site, 2 iSheets, 5 columns, 2 folders, 5 rules
    assert all(a_ids[key] != b_ids[key] for key in shared)


def test_import_writes_declarative_site(imported: Instances) -> None:
    path = imported.b / "sites" / "matters.yaml"
    documents = list(yaml.safe_load_all(path.read_text("utf-8")))
    assert [d["kind"] for d in documents] == ["SiteTemplate", "Site"]
    assert documents[1] == {
        "kind": "Site",
        "name": "matters",
        "title": "Matter work",
        "template": "matters",
        "service_map": {"crm": "crm-b", "intake": "intake-b"},
    }


def test_import_declarative_form_gives_same_result(
    instances: Instances, template_file: Path
) -> None:
    # The same Site written by hand, next to the exported template file.
    hand = instances.root / "configs-hand"
    shutil.copytree(instances.b, hand)
    shutil.copy(template_file, hand / "matters.template.yaml")
    instances.write(
        hand,
        "sites/by-hand.yaml",
        """
        kind: Site
        name: matters
        title: Matter work
        template: matters
        service_map: {crm: crm-b, intake: intake-b}
        """,
    )
    code, output = _import(
        instances, template_file, *MAP_ARGS, "--apply", "--auto-approve"
    )
    by_import = load_config(instances.b, environ=instances.environ)
    by_hand = load_config(hand, environ=instances.environ)
    plan = instances.run(hand, "plan", "--detailed-exitcode")
    assert code == 0, output
    assert by_import.sites == by_hand.sites
    assert by_import.rules == by_hand.rules
    assert plan.returncode == 0, plan.output


def test_import_same_names_map_themselves(
    instances: Instances, template_file: Path
) -> None:
    # A service that B declares under the template's name needs no --map-service.
    instances.write(
        instances.b,
        "crm.yaml",
        """
        kind: ExternalService
        name: crm
        url: https://crm.example.invalid/b
        auth: {type: header, key: {generate: true}}
        """,
    )
    code, output = _import(instances, template_file, "--map-service", "intake=intake-b")
    site = yaml.safe_load_all((instances.b / "sites/matters.yaml").read_text("utf-8"))
    assert code == 0, output
    assert list(site)[1]["service_map"] == {"crm": "crm", "intake": "intake-b"}
    assert "Note: rule 'closed-to-crm' used oauth2 auth for 'crm'" in output


def test_import_again_replaces_earlier_import(
    instances: Instances, template_file: Path
) -> None:
    first, _ = _import(instances, template_file, *MAP_ARGS)
    second, output = _import(
        instances,
        template_file,
        "--map-service",
        "crm=crm-b",
        "--map-service",
        "intake=crm-b",
    )
    text = (instances.b / "sites/matters.yaml").read_text("utf-8")
    assert first == 0
    assert second == 0, output
    assert "intake: crm-b" in text


def test_import_reuses_declared_template(
    instances: Instances, template_file: Path
) -> None:
    first, _ = _import(instances, template_file, *MAP_ARGS, site="matters")
    second, output = _import(instances, template_file, *MAP_ARGS, site="matters-2")
    loaded = load_config(instances.b, environ=instances.environ)
    second_file = yaml.safe_load_all(
        (instances.b / "sites/matters-2.yaml").read_text("utf-8")
    )
    assert first == 0
    assert second == 0, output
    assert "the template is already declared" in output
    assert [d["kind"] for d in second_file] == ["Site"]
    assert sorted(loaded.sites) == ["matters", "matters-2"]


# Unmapped services -----------------------------------------------------------


def test_import_unmapped_lists_every_rule(
    instances: Instances, template_file: Path
) -> None:
    before = instances.files(instances.b)
    code, output = _import(instances, template_file)
    assert code == 1
    for rule in EXTERNAL_RULES:
        assert f"rule '{rule}' calls" in output
    assert "task-done-alert" not in output
    assert "--disable-unmapped" in output
    assert "Traceback" not in output
    assert instances.files(instances.b) == before


def test_import_partly_mapped_lists_the_rest(
    instances: Instances, template_file: Path
) -> None:
    code, output = _import(instances, template_file, "--map-service", "crm=crm-b")
    assert code == 1
    assert "2 external actions call services that have no mapping" in output
    assert "rule 'draft-to-intake' calls 'intake'" in output
    assert "rule 'new-case-to-intake' calls 'intake'" in output
    assert "closed-to-crm" not in output


def test_import_disable_unmapped_imports_disabled(
    instances: Instances, template_file: Path
) -> None:
    code, output = _import(
        instances,
        template_file,
        "--map-service",
        "crm=crm-b",
        "--disable-unmapped",
        "--apply",
        "--auto-approve",
    )
    rules = _live_rules(instances, "b")
    assert code == 0, output
    assert (
        "Imported 2 rules disabled because their services have no mapping: "
        "draft-to-intake, new-case-to-intake." in output
    )
    assert rules["draft-to-intake"]["enabled"] is False
    assert rules["new-case-to-intake"]["enabled"] is False
    assert rules["closed-to-crm"]["enabled"] is True
    assert rules["task-done-alert"]["enabled"] is True


def test_import_disable_unmapped_plan_is_empty(
    instances: Instances, template_file: Path
) -> None:
    _import(instances, template_file, "--disable-unmapped", "--apply", "--auto-approve")
    result = instances.run(instances.b, "plan", "--detailed-exitcode")
    assert result.returncode == 0, result.output


def test_import_map_to_unknown_service_fails(
    instances: Instances, template_file: Path
) -> None:
    before = instances.files(instances.b)
    code, output = _import(
        instances, template_file, "--map-service", "crm=nope", "--disable-unmapped"
    )
    assert code == 1
    assert "service 'nope' is neither declared" in output
    assert "crm-b, intake-b" in output
    assert instances.files(instances.b) == before


def test_import_map_of_unused_service_fails(
    instances: Instances, template_file: Path
) -> None:
    code, output = _import(
        instances, template_file, *MAP_ARGS, "--map-service", "x=crm-b"
    )
    assert code == 1
    assert "no rule of the template calls service 'x'" in output


def test_import_map_to_live_only_service_fails(
    instances: Instances, template_file: Path
) -> None:
    # A service live on B but missing from B's configuration cannot be called
    # by a Site in that configuration, so the import says how to declare it.
    from hqsync.store import open_store

    with open_store(f"sqlite:///{instances.root}/b.db") as store, store.begin() as c:
        store.insert_resource(
            c,
            kind="service",
            scope="",
            name="legacy",
            spec={"url": "https://legacy.example.invalid", "auth": {"type": "header"}},
            secrets={"key": "legacy-key"},
        )
    code, output = _import(
        instances, template_file, "--map-service", "crm=legacy", "--disable-unmapped"
    )
    assert code == 1
    assert "service 'legacy' exists on the target instance but is not declared" in (
        output
    )


# Rejected templates and files ------------------------------------------------


def _edited(template_file: Path, old: str, new: str) -> Path:
    text = template_file.read_text("utf-8")
    assert old in text
    path = template_file.with_name("edited.yaml")
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path


def test_import_rejects_unknown_field(
    instances: Instances, template_file: Path
) -> None:
    before = instances.files(instances.b)
    edited = _edited(
        template_file, "format_version: 1\n", "format_version: 1\nowner: x\n"
    )
    code, output = _import(instances, edited, *MAP_ARGS, "--apply", "--auto-approve")
    assert code == 1
    assert "edited.yaml:7:1: unknown field 'owner'" in output
    assert "owner" in output
    assert instances.files(instances.b) == before
    assert [r for r in instances.live("b") if r.kind == "site"] == []


def test_import_rejects_unknown_nested_field(
    instances: Instances, template_file: Path
) -> None:
    before = instances.files(instances.b)
    edited = _edited(template_file, "  trigger:\n", "  priority: high\n  trigger:\n")
    code, output = _import(instances, edited, *MAP_ARGS)
    assert code == 1
    assert "priority" in output
    assert instances.files(instances.b) == before


def test_import_rejects_future_format_version(
    instances: Instances, template_file: Path
) -> None:
    before = instances.files(instances.b)
    edited = _edited(template_file, "format_version: 1", "format_version: 2")
    code, output = _import(instances, edited, *MAP_ARGS, "--apply", "--auto-approve")
    assert code == 1
    assert "format_version 2 is not supported by this hqsync" in output
    assert instances.files(instances.b) == before
    assert [r for r in instances.live("b") if r.kind == "site"] == []


def test_import_rejects_other_kind(instances: Instances, template_file: Path) -> None:
    edited = _edited(template_file, "kind: SiteTemplate", "kind: Site")
    code, output = _import(instances, edited, *MAP_ARGS)
    assert code == 1
    assert "expected a document of kind SiteTemplate, found 'Site'" in output


def test_import_title_written_as_literal(
    instances: Instances, template_file: Path
) -> None:
    title = "{{ env('CRM_B_SECRET') }} {% if %}"
    code, output = _import(instances, template_file, *MAP_ARGS, "--title", title)
    assert code == 0, output
    config = load_config(instances.b, environ=instances.environ)
    assert config.sites["matters"].title == title
    plan = instances.run(instances.b, "plan")
    assert "crm-b-secret" not in plan.output


def test_import_description_written_as_literal(
    instances: Instances, template_file: Path
) -> None:
    edited = _edited(
        template_file,
        "description: Matter work\n",
        'description: "{% raw %}{{ vars.x }}{% endraw %}"\n',
    )
    code, output = _import(instances, edited, *MAP_ARGS)
    assert code == 0, output
    config = load_config(instances.b, environ=instances.environ)
    assert config.sites["matters"].title == "{{ vars.x }}"


def test_import_rejects_device_file(instances: Instances) -> None:
    before = instances.files(instances.b)
    code, output = _import(instances, Path("/dev/zero"), *MAP_ARGS)
    assert code == 1
    assert "cannot read /dev/zero: not a regular file (a character device)" in output
    assert instances.files(instances.b) == before


def test_import_rejects_fifo(instances: Instances) -> None:
    fifo = instances.root / "template.fifo"
    os.mkfifo(fifo)
    code, output = _import(instances, fifo, *MAP_ARGS)
    assert code == 1
    assert "template.fifo: not a regular file (a FIFO)" in output


def test_import_rejects_too_large_file(
    instances: Instances, template_file: Path
) -> None:
    with template_file.open("a", encoding="utf-8") as handle:
        handle.truncate(MAX_TEMPLATE_FILE_BYTES + 1)
    code, output = _import(instances, template_file, *MAP_ARGS)
    assert code == 1
    assert "file is larger than the limit of 10 MiB" in output


def test_import_refuses_to_overwrite_other_file(
    instances: Instances, template_file: Path
) -> None:
    instances.write(instances.b, "sites/matters.yaml", "kind: Site\nname: matters\n")
    code, output = _import(instances, template_file, *MAP_ARGS)
    assert code == 1
    assert "already exists and is not an earlier import" in output
    assert (instances.b / "sites/matters.yaml").read_text() == (
        "kind: Site\nname: matters\n"
    )


def test_import_invalid_config_writes_nothing(
    instances: Instances, template_file: Path
) -> None:
    # A Site of the same name elsewhere: only the whole configuration shows it.
    instances.write(instances.b, "other.yaml", "kind: Site\nname: matters\n")
    before = instances.files(instances.b)
    code, output = _import(instances, template_file, *MAP_ARGS)
    assert code == 1
    assert "duplicate Site name 'matters'" in output
    assert str(instances.b / "sites" / "matters.yaml") in output
    assert "hqsync-import-" not in output
    assert instances.files(instances.b) == before


def test_import_apply_needs_out_in_config_dir(
    instances: Instances, template_file: Path
) -> None:
    out = instances.root / "elsewhere.yaml"
    code, output = _import(
        instances, template_file, *MAP_ARGS, "--out", str(out), "--apply"
    )
    assert code == 1
    assert "--apply needs the file inside the config directory" in output
    assert not out.exists()


def test_import_out_elsewhere_is_checked(
    instances: Instances, template_file: Path
) -> None:
    out = instances.root / "elsewhere.yaml"
    code, output = _import(instances, template_file, *MAP_ARGS, "--out", str(out))
    assert code == 0, output
    assert out.exists()
    assert not (instances.b / "sites").exists()


def test_import_output_contains_no_secrets(
    instances: Instances, template_file: Path
) -> None:
    code, output = _import(
        instances, template_file, *MAP_ARGS, "--apply", "--auto-approve"
    )
    written = (instances.b / "sites" / "matters.yaml").read_text("utf-8")
    assert code == 0, output
    for secret in (*CANARIES, *SECRETS_OF_B):
        assert secret not in output
        assert secret not in written


def test_import_missing_file_fails(instances: Instances) -> None:
    code, output = _import(instances, instances.root / "absent.yaml", *MAP_ARGS)
    assert code == 1
    assert "cannot read absent.yaml" in output
    assert "Traceback" not in output


def test_import_auto_approve_needs_apply(
    instances: Instances, template_file: Path
) -> None:
    code, output = _import(instances, template_file, *MAP_ARGS, "--auto-approve")
    assert code == 1
    assert "--auto-approve needs --apply" in output
    assert not (instances.b / "sites").exists()


def test_import_secret_file_beside_config_dir(
    instances: Instances, template_file: Path
) -> None:
    # The check before writing loads a copy of the config directory, and a
    # from_file path that leaves the directory must still resolve from it.
    (instances.root / "intake-b.key").write_text(B_INTAKE_KEY, "utf-8")
    services = (instances.b / "services.yaml").read_text("utf-8")
    changed = services.replace(
        "{from_env: INTAKE_B_KEY}", "{from_file: ../intake-b.key}"
    )
    assert changed != services
    instances.write(instances.b, "services.yaml", changed)
    code, output = _import(instances, template_file, *MAP_ARGS)
    leftovers = [p.name for p in instances.root.iterdir() if "hqsync-import" in p.name]
    assert code == 0, output
    assert leftovers == []

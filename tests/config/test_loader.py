"""load_project and load_config: the API other packages build on."""

from __future__ import annotations

from pathlib import Path

import pytest

from hqsync.config import ConfigError, load_config, load_project
from hqsync.config.models import Rule

from .helpers import RULE, SERVICE, SITE, TEST_ENVIRON, write_tree

TEMPLATE = """\
kind: SiteTemplate
name: matter-site
isheets:
  - name: tasks
    columns: [{name: task_id}, {name: state}]
folders: [/Drafts]
rules:
  - name: task-added
    trigger: {type: isheet_item_added, isheet: tasks}
    actions:
      - {type: send_to_external_service, service: salesforce, columns: [task_id]}
  - name: draft-added
    trigger: {type: file_added, folder: /Drafts}
    actions:
      - {type: internal, name: send_alert}
"""


def _problems(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(problem) for problem in excinfo.value.problems]


def test_load_project_without_file_uses_local(tmp_path: Path) -> None:
    context = load_project(tmp_path)

    assert context.instance_name == "local"
    assert context.store_url == "sqlite:///.hqsync/local.db"
    assert context.config_dir == tmp_path


def test_load_project_default_store_names_instance(tmp_path: Path) -> None:
    write_tree(tmp_path, {"hqsync.yaml": "instances:\n  local: {}\n  uat: {}\n"})

    context = load_project(tmp_path, "uat")

    assert context.store_url == "sqlite:///.hqsync/uat.db"


def test_load_project_unknown_instance_lists_known(tmp_path: Path) -> None:
    write_tree(tmp_path, {"hqsync.yaml": "instances:\n  local: {}\n  uat: {}\n"})

    with pytest.raises(ConfigError) as excinfo:
        load_project(tmp_path, "prod")

    assert "unknown instance 'prod'; instances defined: local, uat" in str(
        excinfo.value
    )


def test_load_project_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_project(tmp_path / "nope")

    assert "config directory not found" in str(excinfo.value)


def test_load_config_returns_resources(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yaml": SERVICE, "b.yaml": SITE, "c.yaml": RULE})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert list(config.services) == ["intake"]
    assert list(config.sites) == ["litigation"]
    assert list(config.rules) == [("litigation", "closed")]
    assert config.secrets[("intake", "key")].reveal() == "test-key-value"


def test_load_config_reads_any_depth_and_skips_hidden(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a/b/c/service.yml": SERVICE,
            "a/site.yaml": SITE + "---\n" + RULE,
            ".hidden/broken.yaml": "kind: [",
            "a/.broken.yaml": "kind: [",
            "notes.txt": "kind: [",
        },
    )

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert config.counts() == {
        "ExternalService": 1,
        "Site": 1,
        "Rule": 1,
        "SiteTemplate": 0,
    }


def test_load_config_skips_empty_documents(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yaml": "---\n" + SERVICE + "---\n---\n# only a comment\n"})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert list(config.services) == ["intake"]


def test_load_config_location_of_each_kind(tmp_path: Path) -> None:
    write_tree(tmp_path, {"s.yaml": SERVICE, "x/site.yaml": SITE + "---\n" + RULE})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert config.location("ExternalService", "intake") == (f"{tmp_path}/s.yaml", 1, 1)
    assert config.location("Site", "litigation") == (f"{tmp_path}/x/site.yaml", 1, 1)
    rule_location = config.location("Rule", "litigation", "closed")
    assert rule_location == (f"{tmp_path}/x/site.yaml", 10, 1)


def test_load_config_paths_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "cfg", {"s.yaml": SERVICE})
    monkeypatch.chdir(tmp_path)

    config = load_config("cfg", environ=TEST_ENVIRON)

    assert config.location("ExternalService", "intake") == ("cfg/s.yaml", 1, 1)


def test_load_config_reports_all_problems_sorted(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "b.yaml": SERVICE.replace("name: intake", "name: intake\nstauts: x"),
            "a.yaml": SITE.replace("name: litigation", "name: litigation\ntitle: no"),
        },
    )

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=TEST_ENVIRON)

    problems = _problems(excinfo)
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path}/a.yaml:3:8: `no` is a YAML 1.1 boolean")
    assert problems[1].startswith(f"{tmp_path}/b.yaml:3:1: unknown field 'stauts'")


def test_load_config_template_expands_site(tmp_path: Path) -> None:
    service = SERVICE.replace("name: intake", "name: salesforce-uat")
    site = "kind: Site\nname: acme\ntemplate: matter-site\n"
    site += "service_map: {salesforce: salesforce-uat}\n"
    write_tree(tmp_path, {"s.yaml": service, "t.yaml": TEMPLATE, "site.yaml": site})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    acme = config.sites["acme"]
    assert [isheet.name for isheet in acme.isheets] == ["tasks"]
    assert acme.folders == ["/Drafts"]
    rule = config.rules[("acme", "task-added")]
    assert isinstance(rule, Rule)
    assert rule.site == "acme"
    assert rule.actions[0].type == "send_to_external_service"
    assert rule.actions[0].service == "salesforce-uat"
    assert rule.enabled is True
    assert config.location("Rule", "acme", "task-added") == (f"{tmp_path}/t.yaml", 8, 5)


def test_load_config_template_unmapped_disabled(tmp_path: Path) -> None:
    site = "kind: Site\nname: acme\ntemplate: matter-site\ndisable_unmapped: true\n"
    write_tree(tmp_path, {"s.yaml": SERVICE, "t.yaml": TEMPLATE, "site.yaml": site})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert config.rules[("acme", "task-added")].enabled is False
    assert config.rules[("acme", "draft-added")].enabled is True


def test_load_config_template_unmapped_names_every_rule(tmp_path: Path) -> None:
    template = TEMPLATE.replace(
        "      - {type: internal, name: send_alert}",
        "      - {type: send_to_external_service, service: teams}",
    )
    site = "kind: Site\nname: acme\ntemplate: matter-site\n"
    write_tree(tmp_path, {"s.yaml": SERVICE, "t.yaml": template, "site.yaml": site})

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=TEST_ENVIRON)

    message = str(excinfo.value)
    assert "rule 'task-added' (service 'salesforce')" in message
    assert "rule 'draft-added' (service 'teams')" in message


def test_load_config_template_rule_clashes_with_site_rule(tmp_path: Path) -> None:
    service = SERVICE.replace("name: intake", "name: salesforce")
    site = "kind: Site\nname: acme\ntemplate: matter-site\n"
    rule = (
        "kind: Rule\nname: Task-Added\nsite: acme\n"
        "trigger: {type: file_added}\nactions: [{type: internal, name: x}]\n"
    )
    files = {"s.yaml": service, "t.yaml": TEMPLATE, "site.yaml": site, "r.yaml": rule}
    write_tree(tmp_path, files)

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=TEST_ENVIRON)

    problems = _problems(excinfo)
    assert problems == [
        f"{tmp_path}/r.yaml:2:7: rule 'Task-Added' on site 'acme' is also defined by "
        f"site template 'matter-site' ({tmp_path}/t.yaml:8:5)"
    ]


def test_load_config_variables_merge_cli_over_project(tmp_path: Path) -> None:
    project = "instances:\n  local: {}\nvariables:\n  local: {host: a.invalid, x: y}\n"
    service = SERVICE.replace("intake.example.invalid", "{{ vars.host }}")
    write_tree(tmp_path, {"hqsync.yaml": project, "s.yaml": service})

    config = load_config(tmp_path, cli_vars={"host": "b.invalid"}, environ=TEST_ENVIRON)

    assert config.variables == {"host": "b.invalid", "x": "y"}
    assert config.services["intake"].url == "https://b.invalid/hook"


def test_load_config_template_cannot_change_structure(tmp_path: Path) -> None:
    service = SERVICE + 'description: "{{ vars.text }}"\n'
    write_tree(tmp_path, {"s.yaml": service})

    text = "x\nstatus: inactive\n---\nkind: Rule"
    config = load_config(tmp_path, cli_vars={"text": text}, environ=TEST_ENVIRON)

    assert config.services["intake"].description == text
    assert config.services["intake"].status == "active"


def test_load_config_env_function_reads_environ(tmp_path: Path) -> None:
    service = SERVICE.replace("intake.example.invalid", "{{ env('HQ_HOST') }}")
    write_tree(tmp_path, {"s.yaml": service})

    config = load_config(tmp_path, environ={**TEST_ENVIRON, "HQ_HOST": "h.invalid"})

    assert config.services["intake"].url == "https://h.invalid/hook"


def test_load_config_http_allowed_per_instance(tmp_path: Path) -> None:
    project = "instances:\n  local: {allow_http: true}\n  uat: {}\n"
    service = SERVICE.replace("https://", "http://")
    write_tree(tmp_path, {"hqsync.yaml": project, "s.yaml": service})

    config = load_config(tmp_path, "local", environ=TEST_ENVIRON)
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, "uat", environ=TEST_ENVIRON)

    assert config.services["intake"].url.startswith("http://")
    assert "uses http; use https, or set allow_http: true on instance 'uat'" in str(
        excinfo.value
    )


def test_load_config_secret_url_from_env_checked(tmp_path: Path) -> None:
    service = SERVICE.replace(
        "url: https://intake.example.invalid/hook", "url: {from_env: HQ_URL}"
    )
    write_tree(tmp_path, {"s.yaml": service})
    environ = {**TEST_ENVIRON, "HQ_URL": "ftp://x.invalid/?sig=canary-sig"}

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=environ)

    assert _problems(excinfo) == [
        f"{tmp_path}/s.yaml:3:6: the url from env:HQ_URL must be an https URL"
    ]
    assert "canary-sig" not in str(excinfo.value)


def test_load_config_secret_from_file(tmp_path: Path) -> None:
    service = SERVICE.replace("{from_env: HQ_TEST_KEY}", "{from_file: keys/intake}")
    write_tree(tmp_path, {"s.yaml": service, "keys/intake": "file-secret\n"})

    config = load_config(tmp_path, environ={})

    secret = config.secrets[("intake", "key")]
    assert secret.reveal() == "file-secret"
    assert secret.source == "file:keys/intake"


def test_load_config_generated_key_has_no_secret(tmp_path: Path) -> None:
    service = SERVICE.replace("{from_env: HQ_TEST_KEY}", "{generate: true}")
    write_tree(tmp_path, {"s.yaml": service})

    config = load_config(tmp_path, environ={})

    assert config.secrets == {}


def test_load_config_canary_secret_never_printed(tmp_path: Path) -> None:
    canary = "canary-4f1d-not-for-output"
    service = SERVICE + "status: bogus\n"
    write_tree(tmp_path, {"s.yaml": service, "ok.yaml": SERVICE.replace("intake", "b")})
    environ = {"HQ_TEST_KEY": canary}

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=environ)

    assert canary not in str(excinfo.value)
    assert canary not in repr(excinfo.value.problems)


def test_load_config_repr_masks_secrets(tmp_path: Path) -> None:
    canary = "canary-9a7e-not-for-output"
    write_tree(tmp_path, {"s.yaml": SERVICE})

    config = load_config(tmp_path, environ={"HQ_TEST_KEY": canary})

    assert canary not in repr(config)
    assert canary not in repr(config.secrets)
    assert canary not in str(config.secrets[("intake", "key")])


def test_load_config_strings_stay_strings(tmp_path: Path) -> None:
    site = SITE.replace("{name: matter_id}", '{name: "00123"}')
    write_tree(tmp_path, {"site.yaml": site})

    config = load_config(tmp_path, environ={})

    assert config.sites["litigation"].isheets[0].columns[0].name == "00123"


def test_load_config_merge_keys(tmp_path: Path) -> None:
    rules = (
        "kind: Rule\nname: b\nsite: litigation\n"
        "trigger: {<<: &t {type: isheet_item_updated, isheet: matters},"
        " type: isheet_item_added}\n"
        "actions: [{type: internal, name: x}]\n"
    )
    write_tree(tmp_path, {"site.yaml": SITE, "rules.yaml": rules})

    config = load_config(tmp_path, environ={})

    trigger = config.rules[("litigation", "b")].trigger
    assert trigger.type == "isheet_item_added"
    assert trigger.isheet == "matters"


def test_load_config_unicode_nfd_duplicate_service(tmp_path: Path) -> None:
    first = SERVICE.replace("name: intake", 'name: "r\\u00e9sum\\u00e9"')
    second = SERVICE.replace("name: intake", 'name: "RE\\u0301SUME\\u0301"')
    write_tree(tmp_path, {"s.yaml": first + "---\n" + second})

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=TEST_ENVIRON)

    problems = _problems(excinfo)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/s.yaml:9:7: duplicate ExternalService")


def test_load_config_active_limit_ignores_inactive(tmp_path: Path) -> None:
    project = "instances:\n  local: {limits: {max_active_services: 1}}\n"
    inactive = SERVICE.replace("name: intake", "name: old") + "status: inactive\n"
    write_tree(
        tmp_path, {"hqsync.yaml": project, "s.yaml": SERVICE + "---\n" + inactive}
    )

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    assert len(config.services) == 2


def test_load_config_template_maps_names_ignoring_case(tmp_path: Path) -> None:
    service = SERVICE.replace("name: intake", "name: Salesforce-UAT")
    site = "kind: Site\nname: acme\ntemplate: matter-site\n"
    site += "service_map: {SALESFORCE: salesforce-uat}\n"
    write_tree(tmp_path, {"s.yaml": service, "t.yaml": TEMPLATE, "site.yaml": site})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    action = config.rules[("acme", "task-added")].actions[0]
    assert action.type == "send_to_external_service"
    assert action.service == "Salesforce-UAT"


def test_load_config_template_same_name_service(tmp_path: Path) -> None:
    service = SERVICE.replace("name: intake", "name: salesforce")
    site = "kind: Site\nname: acme\ntemplate: matter-site\n"
    write_tree(tmp_path, {"s.yaml": service, "t.yaml": TEMPLATE, "site.yaml": site})

    config = load_config(tmp_path, environ=TEST_ENVIRON)

    rule = config.rules[("acme", "task-added")]
    assert rule.enabled is True
    assert rule.actions[0].type == "send_to_external_service"
    assert rule.actions[0].service == "salesforce"


def test_load_config_error_quotes_template_not_value(tmp_path: Path) -> None:
    canary = "canary-77c1-not-for-output"
    service = SERVICE + "status: \"{{ env('HQ_CANARY') }}\"\n"
    write_tree(tmp_path, {"s.yaml": service})

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ={**TEST_ENVIRON, "HQ_CANARY": canary})

    assert canary not in str(excinfo.value)
    assert "invalid status '{{ env('HQ_CANARY') }}'" in str(excinfo.value)


def test_load_config_locates_after_empty_documents(tmp_path: Path) -> None:
    rule = RULE.replace("service: intake", "service: missing")
    write_tree(tmp_path, {"s.yaml": SERVICE + SITE.replace("kind", "---\nkind", 1)})
    write_tree(tmp_path, {"r.yaml": "---\n# nothing\n---\n---\n" + rule})

    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ=TEST_ENVIRON)

    assert _problems(excinfo) == [
        f"{tmp_path}/r.yaml:12:47: external service 'missing' is not defined "
        "(defined: intake)"
    ]

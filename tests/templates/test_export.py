"""``hqsync template export``: the template file and its dependency report."""

from __future__ import annotations

from pathlib import Path

import yaml

from hqsync.config.models import SiteTemplate
from hqsync.templates import read_template, template_data

from .helpers import CANARIES, EXTERNAL_RULES, Instances


def _document(path: Path) -> dict[str, object]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_export_dependencies_list_external_rules(template_file: Path) -> None:
    exported = SiteTemplate.model_validate(_document(template_file))
    rules = sorted(dependency.rule for dependency in exported.dependencies)
    assert rules == EXTERNAL_RULES


def test_export_dependencies_name_auth_and_secrets(template_file: Path) -> None:
    exported = SiteTemplate.model_validate(_document(template_file))
    found = {
        (d.rule, d.service, d.auth_type, tuple(d.secrets))
        for d in exported.dependencies
    }
    assert found == {
        ("closed-to-crm", "crm", "oauth2", ("client_secret",)),
        ("paused-crm-sync", "crm", "oauth2", ("client_secret",)),
        ("new-case-to-intake", "intake", "header", ("url", "key")),
        ("draft-to-intake", "intake", "header", ("url", "key")),
    }


def test_export_report_printed_for_each_external_rule(instances: Instances) -> None:
    out = instances.root / "t.yaml"
    result = instances.run(
        instances.a, "template", "export", "matters", "--out", str(out)
    )
    report = result.stdout.split("Dependency report:", 1)[1]
    listed = sorted(line.split()[0] for line in report.splitlines()[2:] if line.strip())
    assert result.returncode == 0, result.output
    assert "4 rules of site template 'matters' call external services" in report
    assert listed == EXTERNAL_RULES
    assert "task-done-alert" not in report
    assert "early-to-crm" not in report


def test_export_to_stdout_reports_on_stderr(instances: Instances) -> None:
    result = instances.run(instances.a, "template", "export", "matters", "--out", "-")
    assert result.returncode == 0, result.output
    assert yaml.safe_load(result.stdout)["kind"] == "SiteTemplate"
    assert "Dependency report" in result.stderr
    assert "Dependency report" not in result.stdout


def _walk(value: object, keys: list[str], numbers: list[object]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            keys.append(str(key))
            _walk(item, keys, numbers)
    elif isinstance(value, list):
        for item in value:
            _walk(item, keys, numbers)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        numbers.append(value)


def test_export_holds_no_secrets(template_file: Path) -> None:
    text = template_file.read_text(encoding="utf-8")
    for canary in CANARIES:
        assert canary not in text
    assert "hooks.example.invalid" not in text


def test_export_holds_no_ids(template_file: Path) -> None:
    document = _document(template_file)
    document.pop("format_version")
    keys: list[str] = []
    numbers: list[object] = []
    _walk(document, keys, numbers)
    assert numbers == []
    assert not {key for key in keys if key == "id" or key.endswith("Id")}


def test_export_fixed_order_and_format_version(template_file: Path) -> None:
    document = _document(template_file)
    isheets = document["isheets"]
    assert isinstance(isheets, list)
    assert list(document)[:3] == ["kind", "name", "format_version"]
    assert document["format_version"] == 1
    assert [isheet["name"] for isheet in isheets] == ["cases", "tasks"]
    assert [c["name"] for c in isheets[0]["columns"]] == ["case_id", "status", "value"]
    assert document["folders"] == ["/Contracts", "/Drafts"]
    assert document["description"] == "Matter work"


def test_export_records_hqsync_version(template_file: Path) -> None:
    first_line = template_file.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# Site template exported by hqsync ")


def test_export_unknown_site_lists_sites(instances: Instances) -> None:
    out = instances.root / "missing.yaml"
    result = instances.run(instances.a, "template", "export", "nope", "--out", str(out))
    assert result.returncode == 1
    assert "site 'nope' does not exist on this instance" in result.stderr
    assert "early, matters" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_template_data_jinja_text_loads_back(tmp_path: Path) -> None:
    template = SiteTemplate.model_validate(
        {
            "kind": "SiteTemplate",
            "name": "t",
            "folders": ["/{{ not a variable }}"],
            "rules": [
                {
                    "name": "r",
                    "trigger": {"type": "file_added"},
                    "actions": [
                        {
                            "type": "internal",
                            "name": "send_alert",
                            "params": {"subject": "{% if x %}hi{% endif %}"},
                        }
                    ],
                }
            ],
        }
    )
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(template_data(template)), encoding="utf-8")
    loaded = read_template(path, "t.yaml", {}, {})
    assert loaded == template


def test_export_invalid_name_rejected(instances: Instances) -> None:
    out = instances.root / "bad.yaml"
    result = instances.run(
        instances.a, "template", "export", "matters", "--name", "a/b", "--out", str(out)
    )
    assert result.returncode == 1
    assert "invalid template name 'a/b'" in result.stderr
    assert not out.exists()

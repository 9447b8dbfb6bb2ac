"""hqsync validate, schema and keygen, and the --env-file option."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .helpers import RULE, SERVICE, SITE, run_cli, write_tree


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_tree(
        tmp_path / "cfg", {"s.yaml": SERVICE, "site.yaml": SITE + "---\n" + RULE}
    )


def test_validate_prints_summary(config_dir: Path) -> None:
    result = run_cli("--config-dir", "cfg", "validate")

    assert result.exit_code == 0
    assert result.output == (
        "Configuration is valid for instance 'local': 1 external service, "
        "1 site, 1 rule, 0 site templates\n"
    )


def test_validate_prints_problems_and_count(config_dir: Path) -> None:
    (config_dir / "bad.yaml").write_text("kind: Site\nname: x\ntitle: off\nfoo: 1\n")

    result = run_cli("--config-dir", "cfg", "validate")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "cfg/bad.yaml:3:8: `off` is a YAML 1.1 boolean here; quote it: 'off'",
        "cfg/bad.yaml:4:1: unknown field 'foo'; valid fields: disable_unmapped, "
        "folders, isheets, kind, name, service_map, template, title",
        "2 errors in configuration",
    ]


def test_validate_unknown_instance(config_dir: Path) -> None:
    result = run_cli("--config-dir", "cfg", "--instance", "prod", "validate")

    assert result.exit_code == 1
    assert result.output == (
        "cfg/hqsync.yaml:1:1: unknown instance 'prod'; instances defined: local "
        "(there is no hqsync.yaml, so only the default exists)\n"
        "1 error in configuration\n"
    )


def test_validate_var_fills_template(config_dir: Path) -> None:
    service = SERVICE.replace("intake.example.invalid", "{{ vars.host }}")
    (config_dir / "s.yaml").write_text(service)

    missing = run_cli("--config-dir", "cfg", "validate")
    given = run_cli("--config-dir", "cfg", "--var", "host=h.invalid", "validate")

    assert missing.exit_code == 1
    assert "'dict object' has no attribute 'host'" in missing.output
    assert given.exit_code == 0


def test_validate_missing_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = run_cli("--config-dir", "nope", "validate")

    assert result.exit_code == 1
    assert (
        result.output
        == "nope:1:1: config directory not found\n1 error in configuration\n"
    )


def test_env_file_sets_unset_variables(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {**os.environ, "HQ_PRESET": "from-environment"}
    monkeypatch.setattr(os, "environ", environ)
    service = SERVICE.replace("HQ_TEST_KEY", "HQ_FROM_FILE")
    (config_dir / "s.yaml").write_text(service)
    (config_dir / "test.env").write_text(
        "HQ_FROM_FILE=from-file\nHQ_PRESET=from-file\n"
    )

    result = run_cli("--env-file", "cfg/test.env", "--config-dir", "cfg", "validate")

    assert result.exit_code == 0, result.output
    assert os.environ["HQ_FROM_FILE"] == "from-file"
    assert os.environ["HQ_PRESET"] == "from-environment"


def test_env_file_missing_is_usage_error(config_dir: Path) -> None:
    result = run_cli("--env-file", "nope.env", "validate")

    assert result.exit_code == 2
    assert "nope.env" in result.output


def test_schema_writes_one_file_per_kind(tmp_path: Path) -> None:
    result = run_cli("schema", "--out", str(tmp_path / "out"))

    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert result.exit_code == 0
    assert names == [
        "ExternalService.schema.json",
        "Rule.schema.json",
        "Site.schema.json",
        "SiteTemplate.schema.json",
        "hqsync.schema.json",
        "resource.schema.json",
    ]
    rule = json.loads((tmp_path / "out" / "Rule.schema.json").read_text())
    assert rule["additionalProperties"] is False


def test_keygen_prints_256_bit_key() -> None:
    first = run_cli("keygen").output.strip()
    second = run_cli("keygen").output.strip()

    assert len(first) >= 43
    assert first != second

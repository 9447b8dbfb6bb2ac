"""The examples in configs/ and the committed JSON Schemas in schemas/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values

from hqsync.config import load_config
from hqsync.config.documents import MODEL_BY_KIND, resource_files
from hqsync.config.schema import build_schemas, render_schema

from .helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SCHEMAS = ROOT / "schemas"
SANDBOX_ENV = {k: v for k, v in dotenv_values(CONFIGS / "sandbox.env").items() if v}

# Per-document mistakes that both the models and the JSON Schemas reject.
INVALID_DOCUMENTS = [
    {"kind": "ExternalService", "name": "a", "url": "https://a.invalid", "stauts": 1},
    {
        "kind": "ExternalService",
        "name": "a",
        "url": "https://a.invalid",
        "auth": {"type": "header", "key": "literal"},
    },
    {
        "kind": "ExternalService",
        "name": "a",
        "url": "https://a.invalid",
        "status": "paused",
        "auth": {"type": "header", "key": {"generate": True}},
    },
    {
        "kind": "ExternalService",
        "name": "a",
        "url": "https://a.invalid",
        "auth": {
            "type": "oauth2",
            "grant_type": "password",
            "token_url": "https://t",
            "client_id": "x",
            "client_secret": {"from_env": "S"},
        },
    },
    {"kind": "Site", "name": "", "isheets": []},
    {"kind": "Site", "name": "s", "folders": ["no-slash"]},
    {
        "kind": "Rule",
        "name": "r",
        "site": "s",
        "trigger": {"type": "item_deleted"},
        "actions": [{"type": "internal", "name": "x"}],
    },
    {
        "kind": "Rule",
        "name": "r",
        "site": "s",
        "trigger": {"type": "file_added"},
        "actions": [],
    },
    {
        "kind": "Rule",
        "name": "r",
        "site": "s",
        "trigger": {"type": "file_added"},
        "actions": [{"type": "send_to_external_service"}],
    },
    {"kind": "SiteTemplate", "name": "t", "rules": [{"name": "r"}]},
]


def _example_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in resource_files(CONFIGS):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                documents.append((path.relative_to(ROOT).as_posix(), document))
    return documents


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


def test_examples_validate_with_sandbox_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    # --env-file writes into os.environ; keep that inside this test.
    environ = {k: v for k, v in os.environ.items() if k not in SANDBOX_ENV}
    monkeypatch.setattr(os, "environ", environ)

    result = run_cli("--env-file", "configs/sandbox.env", "validate")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Configuration is valid for instance 'local'")


def test_examples_cover_the_language() -> None:
    config = load_config(CONFIGS, environ=SANDBOX_ENV)

    rules = list(config.rules.values())
    triggers = {rule.trigger.type for rule in rules}
    operators = {c.operator for rule in rules for c in rule.conditions}
    statuses = {service.status for service in config.services.values()}
    assert triggers == {
        "isheet_item_added",
        "isheet_item_updated",
        "file_added",
        "file_updated",
    }
    assert len(operators) >= 5
    assert {rule.rule_type for rule in rules} == {
        "Internal",
        "External",
        "Internal and External",
    }
    assert statuses == {"active", "inactive"}
    assert len(config.rules) >= 6
    assert any(site.template for site in config.sites.values())


def test_examples_validate_for_uat() -> None:
    environ = {
        **SANDBOX_ENV,
        "PA_TRIGGER_URL": "https://prod-00.example.invalid/workflows/1/invoke?sig=x",
    }

    config = load_config(CONFIGS, "uat", environ=environ)

    assert config.services["salesforce"].url.startswith("https://")
    assert config.store_url == "sqlite:///.hqsync/uat.db"


def test_examples_fail_without_secrets() -> None:
    with pytest.raises(Exception) as excinfo:
        load_config(CONFIGS, environ={})

    assert "SF_CLIENT_SECRET is not set" in str(excinfo.value)


def test_schema_files_up_to_date() -> None:
    expected = build_schemas()

    committed = sorted(path.name for path in SCHEMAS.glob("*.json"))

    assert committed == sorted(expected), "run: hqsync schema --out schemas"
    for name, schema in expected.items():
        text = (SCHEMAS / name).read_text(encoding="utf-8")
        assert text == render_schema(schema), (
            f"{name} is stale: hqsync schema --out schemas"
        )


def test_schema_check_command_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)

    result = run_cli("schema", "--check")

    assert result.exit_code == 0, result.output


def test_schema_check_command_fails_when_stale(tmp_path: Path) -> None:
    run_cli("schema", "--out", str(tmp_path))
    (tmp_path / "Rule.schema.json").write_text("{}\n", encoding="utf-8")

    result = run_cli("schema", "--check", "--out", str(tmp_path))

    assert result.exit_code == 1
    assert "Rule.schema.json is out of date" in result.output


def test_schema_accepts_every_example_document() -> None:
    resource = _schema("resource.schema.json")
    for source, document in _example_documents():
        kind_schema = _schema(f"{document['kind']}.schema.json")
        jsonschema.validate(document, kind_schema)
        jsonschema.validate(document, resource)
        assert source


def test_schema_accepts_project_file() -> None:
    project = yaml.safe_load((CONFIGS / "hqsync.yaml").read_text(encoding="utf-8"))

    jsonschema.validate(project, _schema("hqsync.schema.json"))


@pytest.mark.parametrize("document", INVALID_DOCUMENTS)
def test_schema_and_models_reject_alike(document: dict[str, Any]) -> None:
    model = MODEL_BY_KIND[document["kind"]]
    validator = jsonschema.Draft202012Validator(_schema("resource.schema.json"))

    with pytest.raises(Exception) as excinfo:
        model.model_validate(document)

    assert type(excinfo.value).__name__ == "ValidationError"
    assert not validator.is_valid(document)

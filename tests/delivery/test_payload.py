from __future__ import annotations

from datetime import UTC, datetime

from hqsync.delivery.payload import (
    build_common_fields,
    build_document_body,
    build_isheet_body,
    document_extension,
    validate_v1_body,
)

EXECUTED_AT = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)


def _common(event_type: str) -> dict[str, object]:
    return build_common_fields(
        instance_id=5501,
        instance_base_url="https://hq.example.invalid",
        timezone="Europe/London",
        site_id=3,
        author=77,
        event_type=event_type,
        content_id=1042,
        rule_id=9,
        executed_at=EXECUTED_AT,
    )


def test_build_isheet_body_has_highq_fields() -> None:
    body = build_isheet_body(
        common=_common("isheet_item_updated"), isheet_id=4, column_ids=[5, 6]
    )
    assert list(body) == [
        "instanceId",
        "instanceBaseUrl",
        "timezone",
        "siteId",
        "workflowVersion",
        "author",
        "moduleAlias",
        "operation",
        "contentID",
        "workflowId",
        "ruleId",
        "ruleExecutionTimestamp",
        "isheetID",
        "columnIds",
    ]
    assert body["operation"] == "EDIT_ITEM"
    assert body["moduleAlias"] == "SITE_MODULE_ISHEET"
    assert body["ruleExecutionTimestamp"] == "2026-12-01T10:00:00.123Z"
    assert validate_v1_body(body) == []


def test_build_document_body_validates() -> None:
    body = build_document_body(
        common=_common("file_added"), parent_folder_id=12, file_name="NDA.PDF"
    )
    assert body["operation"] == "ACTIVITY_DOCUMENT_ADDED"
    assert body["documentExtension"] == "pdf"
    assert "isheetID" not in body
    assert validate_v1_body(body) == []


def test_document_extension_cases() -> None:
    assert document_extension("a.tar.gz") == "gz"
    assert document_extension("README") == ""
    assert document_extension(".bashrc") == ""


def test_validate_v1_body_rejects_wrong_casing() -> None:
    body = build_isheet_body(
        common=_common("isheet_item_added"), isheet_id=4, column_ids=[]
    )
    body["contentId"] = body.pop("contentID")
    errors = validate_v1_body(body)
    assert "missing field 'contentID'" in errors
    assert "unexpected field 'contentId'" in errors


def test_validate_v1_body_rejects_values_and_types() -> None:
    body = build_isheet_body(
        common=_common("isheet_item_added"), isheet_id=4, column_ids=[1]
    )
    body["siteId"] = "3"
    body["columnIds"] = ["status"]
    body["operation"] = "ACTIVITY_DOCUMENT_ADDED"
    errors = validate_v1_body(body)
    assert any(error.startswith("siteId must be an integer") for error in errors)
    assert any(error.startswith("columnIds must be a list") for error in errors)
    assert any(error.startswith("operation must be one of") for error in errors)


def test_validate_v1_body_rejects_non_object() -> None:
    assert validate_v1_body([1]) == ["the body must be a JSON object, not list"]


def test_validate_v1_body_rejects_unknown_module() -> None:
    errors = validate_v1_body({"moduleAlias": "SITE_MODULE_WIKI"})
    assert errors == [
        "moduleAlias must be SITE_MODULE_ISHEET or SITE_MODULE_DOCUMENTS, "
        "not 'SITE_MODULE_WIKI'"
    ]

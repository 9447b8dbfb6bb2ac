"""HighQ's "V1" webhook request body: its fields, how hqsync fills them, a check.

The field names and their casing are HighQ's own, so a receiver built for
HighQ (a Power Automate flow with that JSON schema, an Apex REST class) takes
hqsync's body unchanged. The body carries identifiers only, never iSheet
values. hqsync fills the fields HighQ leaves to the platform like this:

- ``instanceId``: the store's random numeric instance id.
- ``instanceBaseUrl``: the instance's ``base_url`` setting, or ``null`` when
  it has none; ``timezone``: the instance's ``timezone`` setting.
- ``author``: the event's ``author`` (or ``user_id``) as given, else ``null``.
- ``workflowId``: the site's id, because every site has one workflow.
- ``ruleExecutionTimestamp``: when matching ran, ISO 8601 UTC with
  milliseconds (``2026-12-01T10:00:00.123Z``).
- Numeric ids (``instanceId``, ``siteId``, ``contentID``, ``isheetID``, ``columnIds``,
  ``parentFolderId``, ``ruleId``, ``workflowId``) are JSON integers;
  ``parentFolderId`` is ``null`` when the event's folder is not in the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

WORKFLOW_VERSION = "V1"
MODULE_ISHEET = "SITE_MODULE_ISHEET"
MODULE_DOCUMENTS = "SITE_MODULE_DOCUMENTS"

OPERATIONS = {
    "isheet_item_added": "ADD_ITEM",
    "isheet_item_updated": "EDIT_ITEM",
    "file_added": "ACTIVITY_DOCUMENT_ADDED",
    "file_updated": "ACTIVITY_VERSION_UPLOADED",
}
"""HighQ's ``operation`` for each trigger type."""

COMMON_FIELDS = (
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
)
ISHEET_FIELDS = (*COMMON_FIELDS, "isheetID", "columnIds")
DOCUMENT_FIELDS = (*COMMON_FIELDS, "parentFolderId", "documentExtension")

_MODULE_FIELDS = {MODULE_ISHEET: ISHEET_FIELDS, MODULE_DOCUMENTS: DOCUMENT_FIELDS}
_MODULE_OPERATIONS = {
    MODULE_ISHEET: ("ADD_ITEM", "EDIT_ITEM"),
    MODULE_DOCUMENTS: ("ACTIVITY_DOCUMENT_ADDED", "ACTIVITY_VERSION_UPLOADED"),
}
_INTEGER_FIELDS = ("instanceId", "siteId", "contentID", "workflowId", "ruleId")
_OPTIONAL_INTEGER_FIELDS = ("parentFolderId",)
_OPTIONAL_STRING_FIELDS = ("instanceBaseUrl",)
_STRING_FIELDS = ("timezone", "documentExtension")


def format_timestamp(moment: datetime) -> str:
    """Format a moment as ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def document_extension(file_name: str) -> str:
    """Return a file name's extension, lower case and without the dot ("" if none)."""
    stem, dot, extension = file_name.rpartition(".")
    if not dot or not stem:
        return ""
    return extension.lower()


def build_isheet_body(
    *,
    common: dict[str, Any],
    isheet_id: int,
    column_ids: list[int],
) -> dict[str, Any]:
    """Build the V1 body of an iSheet event from the common fields."""
    return {**common, "isheetID": isheet_id, "columnIds": list(column_ids)}


def build_document_body(
    *,
    common: dict[str, Any],
    parent_folder_id: int | None,
    file_name: str,
) -> dict[str, Any]:
    """Build the V1 body of a file event from the common fields."""
    return {
        **common,
        "parentFolderId": parent_folder_id,
        "documentExtension": document_extension(file_name),
    }


def build_common_fields(
    *,
    instance_id: int,
    instance_base_url: str | None,
    timezone: str,
    site_id: int,
    author: int | str | None,
    event_type: str,
    content_id: int,
    rule_id: int,
    executed_at: datetime,
) -> dict[str, Any]:
    """Build the fields every V1 body has, in HighQ's order."""
    module = MODULE_ISHEET if event_type.startswith("isheet_") else MODULE_DOCUMENTS
    return {
        "instanceId": instance_id,
        "instanceBaseUrl": instance_base_url,
        "timezone": timezone,
        "siteId": site_id,
        "workflowVersion": WORKFLOW_VERSION,
        "author": author,
        "moduleAlias": module,
        "operation": OPERATIONS[event_type],
        "contentID": content_id,
        "workflowId": site_id,
        "ruleId": rule_id,
        "ruleExecutionTimestamp": format_timestamp(executed_at),
    }


def validate_v1_body(body: object) -> list[str]:
    """Check a request body against the V1 shape; return one message per error."""
    if not isinstance(body, dict):
        return [f"the body must be a JSON object, not {type(body).__name__}"]
    module = body.get("moduleAlias")
    if module not in _MODULE_FIELDS:
        expected = " or ".join(_MODULE_FIELDS)
        return [f"moduleAlias must be {expected}, not {module!r}"]

    errors = _check_field_set(body, _MODULE_FIELDS[module])
    errors += _check_values(body, module)
    return errors


def _check_field_set(body: dict[str, Any], expected: tuple[str, ...]) -> list[str]:
    errors = [f"missing field {name!r}" for name in expected if name not in body]
    errors += [f"unexpected field {name!r}" for name in body if name not in expected]
    return errors


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_values(body: dict[str, Any], module: str) -> list[str]:
    errors: list[str] = []
    for name in _INTEGER_FIELDS:
        if name in body and not _is_integer(body[name]):
            errors.append(f"{name} must be an integer, not {body[name]!r}")
    for name in _OPTIONAL_INTEGER_FIELDS:
        if body.get(name) is not None and not _is_integer(body[name]):
            errors.append(f"{name} must be an integer or null, not {body[name]!r}")
    for name in _STRING_FIELDS:
        if name in body and not isinstance(body[name], str):
            errors.append(f"{name} must be a string, not {body[name]!r}")
    for name in _OPTIONAL_STRING_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.append(f"{name} must be a string or null, not {body[name]!r}")

    author = body.get("author")
    if author is not None and not (_is_integer(author) or isinstance(author, str)):
        errors.append(f"author must be an integer, a string or null, not {author!r}")
    if body.get("workflowVersion", WORKFLOW_VERSION) != WORKFLOW_VERSION:
        errors.append(f"workflowVersion must be 'V1', not {body['workflowVersion']!r}")
    operation = body.get("operation")
    if "operation" in body and operation not in _MODULE_OPERATIONS[module]:
        allowed = ", ".join(_MODULE_OPERATIONS[module])
        errors.append(
            f"operation must be one of {allowed} for {module}, not {operation!r}"
        )
    errors += _check_module_values(body, module)
    errors += _check_timestamp(body)
    return errors


def _check_module_values(body: dict[str, Any], module: str) -> list[str]:
    errors: list[str] = []
    if module == MODULE_ISHEET:
        if "isheetID" in body and not _is_integer(body["isheetID"]):
            errors.append(f"isheetID must be an integer, not {body['isheetID']!r}")
        column_ids = body.get("columnIds", [])
        if not isinstance(column_ids, list) or not all(map(_is_integer, column_ids)):
            errors.append(f"columnIds must be a list of integers, not {column_ids!r}")
    return errors


def _check_timestamp(body: dict[str, Any]) -> list[str]:
    stamp = body.get("ruleExecutionTimestamp")
    if "ruleExecutionTimestamp" not in body:
        return []
    if isinstance(stamp, str) and stamp.endswith("Z"):
        try:
            datetime.fromisoformat(stamp[:-1] + "+00:00")
            return []
        except ValueError:
            pass
    return [f"ruleExecutionTimestamp must be ISO 8601 UTC ending in Z, not {stamp!r}"]

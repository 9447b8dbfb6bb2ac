from __future__ import annotations

from typing import Any

import pytest

from hqsync.delivery.events import FileEvent, ISheetEvent, validate_event
from hqsync.delivery.matching import condition_holds, trigger_matches


def isheet_event(
    values: dict[str, Any], previous: dict[str, Any] | None = None
) -> ISheetEvent:
    event = validate_event(
        {
            "id": "e",
            "type": "isheet_item_updated",
            "site": "s",
            "isheet": "Matters",
            "item_id": 1,
            "occurred_at": "2026-12-01T10:00:00Z",
            "values": values,
            "previous_values": previous,
        }
    )
    assert isinstance(event, ISheetEvent)
    return event


def file_event(folder: str = "/Contracts", name: str = "nda.PDF") -> FileEvent:
    event = validate_event(
        {
            "id": "f",
            "type": "file_added",
            "site": "s",
            "file_id": 2,
            "folder": folder,
            "name": name,
            "occurred_at": "2026-12-01T10:00:00Z",
        }
    )
    assert isinstance(event, FileEvent)
    return event


def holds(
    operator: str, value: Any, values: dict[str, Any], previous: Any = None
) -> bool:
    condition = {"column": "status", "operator": operator, "value": value}
    return condition_holds(condition, isheet_event(values, previous))


@pytest.mark.parametrize(
    ("operator", "value", "values", "expected"),
    [
        ("equals", "Closed", {"status": "Closed"}, True),
        ("equals", "Closed", {"status": "closed"}, False),
        ("equals", 5, {"status": 5.0}, True),
        ("equals", "5", {"status": 5}, True),
        ("equals", "Closed", {}, False),
        ("not_equals", "Closed", {"status": "Open"}, True),
        ("not_equals", "Closed", {}, True),
        ("not_equals", "Closed", {"status": "Closed"}, False),
        ("in", ["NDA", "MSA"], {"status": "MSA"}, True),
        ("in", ["NDA", "MSA"], {"status": "SOW"}, False),
        ("contains", "urgent", {"status": "Very URGENT"}, True),
        ("contains", "NDA", {"status": ["MSA", "NDA"]}, True),
        ("contains", "NDA", {"status": None}, False),
        ("is_empty", None, {"status": "  "}, True),
        ("is_empty", None, {}, True),
        ("is_empty", None, {"status": []}, True),
        ("is_empty", None, {"status": 0}, False),
        ("is_not_empty", None, {"status": "x"}, True),
        ("is_not_empty", None, {"status": ""}, False),
    ],
)
def test_condition_operators(
    operator: str, value: Any, values: dict[str, Any], expected: bool
) -> None:
    assert holds(operator, value, values) is expected


def test_condition_changed_needs_a_different_value() -> None:
    assert holds("changed", None, {"status": "Closed"}, {"status": "Open"}) is True
    assert holds("changed", None, {"status": "Open"}, {"status": "Open"}) is False


def test_condition_changed_ignores_untouched_column() -> None:
    assert holds("changed", None, {"other": 1}, {"status": "Open"}) is False


def test_condition_changed_from_nothing() -> None:
    assert holds("changed", None, {"status": "Open"}, None) is True


def test_condition_changed_to_value() -> None:
    assert (
        holds("changed_to", "Closed", {"status": "Closed"}, {"status": "Open"}) is True
    )
    assert (
        holds("changed_to", "Closed", {"status": "Closed"}, {"status": "Closed"})
        is False
    )
    assert holds("changed_to", "Closed", {"status": "Open"}, {"status": "New"}) is False


def test_condition_file_fields() -> None:
    event = file_event("/Contracts/", "nda.PDF")
    extension = {"field": "extension", "operator": "equals", "value": "pdf"}
    folder = {"field": "folder", "operator": "equals", "value": "/Contracts"}
    name = {"field": "name", "operator": "contains", "value": "NDA"}
    assert condition_holds(extension, event) is True
    assert condition_holds(folder, event) is True
    assert condition_holds(name, event) is True


def test_trigger_matches_isheet_case_insensitively() -> None:
    trigger = {"type": "isheet_item_updated", "isheet": "matters"}
    assert trigger_matches(trigger, isheet_event({})) is True


def test_trigger_rejects_other_type() -> None:
    trigger = {"type": "isheet_item_added", "isheet": "Matters"}
    assert trigger_matches(trigger, isheet_event({})) is False


def test_trigger_folder_must_match() -> None:
    trigger = {"type": "file_added", "folder": "/Signed"}
    assert trigger_matches(trigger, file_event("/Contracts")) is False
    assert trigger_matches(trigger, file_event("/Signed")) is True


def test_trigger_without_folder_matches_any_folder() -> None:
    assert trigger_matches({"type": "file_added"}, file_event("/Any/Where")) is True

"""Trigger events: their shape, and parsing JSON, JSON arrays and JSON Lines.

An input is a JSON array of events, one JSON object, or JSON Lines (one
object per line). Each event is validated on its own, so one bad event is
reported with its line number while the good ones are still taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

EventId = Annotated[str, Field(min_length=1, max_length=256)]
Author = int | str | None


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EventId
    site: Annotated[str, Field(min_length=1, max_length=512)]
    occurred_at: AwareDatetime
    author: Author = None
    user_id: Author = None

    @property
    def acting_user(self) -> int | str | None:
        """Return the user who made the change: ``author``, else ``user_id``."""
        return self.author if self.author is not None else self.user_id


class ISheetEvent(_Event):
    """An iSheet item was added or updated."""

    type: Literal["isheet_item_added", "isheet_item_updated"]
    isheet: Annotated[str, Field(min_length=1, max_length=512)]
    item_id: Annotated[int, Field(ge=1)]
    values: dict[str, Any] = Field(default_factory=dict)
    previous_values: dict[str, Any] | None = None

    @property
    def content_id(self) -> int:
        """Return the id HighQ's body calls ``contentID``: the item id."""
        return self.item_id


class FileEvent(_Event):
    """A file was added, or a new version of it uploaded."""

    type: Literal["file_added", "file_updated"]
    file_id: Annotated[int, Field(ge=1)]
    folder: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^/")]
    name: Annotated[str, Field(min_length=1, max_length=1000)]

    @property
    def content_id(self) -> int:
        """Return the id HighQ's body calls ``contentID``: the file id."""
        return self.file_id


Event = Annotated[ISheetEvent | FileEvent, Field(discriminator="type")]
_EVENT_ADAPTER: TypeAdapter[ISheetEvent | FileEvent] = TypeAdapter(Event)


@dataclass
class ParsedEvents:
    """Valid events with their line numbers, and one message per invalid one."""

    events: list[tuple[int, ISheetEvent | FileEvent]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


def validate_event(data: object) -> ISheetEvent | FileEvent:
    """Validate one decoded JSON value as an event; raise ValueError if invalid."""
    try:
        return _EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(parts)


def parse_events(text: str) -> ParsedEvents:
    """Parse a JSON array, one JSON object or JSON Lines into events."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _parse_array(text)
    if stripped.startswith("{"):
        try:
            single = json.loads(text)
        except json.JSONDecodeError:
            return _parse_lines(text)
        return _collect([(_line_of(text, len(text) - len(stripped)), single)])
    return _parse_lines(text)


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _collect(values: list[tuple[int, object]]) -> ParsedEvents:
    parsed = ParsedEvents()
    for line, value in values:
        try:
            parsed.events.append((line, validate_event(value)))
        except ValueError as exc:
            parsed.problems.append((line, str(exc)))
    return parsed


def _parse_lines(text: str) -> ParsedEvents:
    values: list[tuple[int, object]] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append((number, f"invalid JSON: {exc.msg} at column {exc.colno}"))
    parsed = _collect(values)
    parsed.problems = sorted(problems + parsed.problems)
    return parsed


def _parse_array(text: str) -> ParsedEvents:
    # Decode element by element so each event keeps its line number, and a
    # broken element is reported where it starts.
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    values: list[tuple[int, object]] = []
    while True:
        index = _skip_space(text, index)
        if index < len(text) and text[index] == "]" and not values:
            break
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            parsed = _collect(values)
            parsed.problems.append(
                (exc.lineno, f"invalid JSON: {exc.msg}; stopped here")
            )
            return parsed
        values.append((_line_of(text, index), value))
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index += 1
            continue
        if index < len(text) and text[index] == "]":
            break
        parsed = _collect(values)
        message = "invalid JSON: expected ',' or ']' after an array element"
        parsed.problems.append((_line_of(text, index), message))
        return parsed
    return _collect(values)


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index

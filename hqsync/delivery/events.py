"""Trigger events: their shape, and reading JSON, JSON arrays and JSON Lines.

An input is JSON Lines (one object per line), one JSON object, or a JSON
array of events. JSON Lines are read as a stream in batches, so memory stays
bounded whatever the input's size. An event line may be at most
``MAX_EVENT_BYTES`` (1 MiB), and a JSON array or a single object spread over
lines at most ``MAX_DOCUMENT_BYTES`` (50 MiB), which is read whole. Each event
is validated on its own, so a bad event is reported with its line number while
the good ones are still taken. A UTF-8 byte-order mark at the start is ignored.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, BinaryIO, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

MAX_EVENT_BYTES = 1 << 20
"""The largest event, in bytes of its JSON text (a JSON Lines line)."""

MAX_DOCUMENT_BYTES = 50 << 20
"""The largest input read whole: a JSON array, or one object over many lines."""

MAX_NESTING = 64
"""The deepest nesting of arrays and objects inside one event."""

BATCH_SIZE = 500
"""Events per batch; the outbox stores one batch per transaction."""

BATCH_BYTES = 16 << 20
"""The JSON text per batch, in bytes, after which a batch ends early."""

_BOM = b"\xef\xbb\xbf"


MAX_INT64 = 2**63 - 1
EventId = Annotated[str, Field(min_length=1, max_length=256)]
ContentId = Annotated[int, Field(ge=1, le=MAX_INT64)]
Author = int | str | None

MAX_FUTURE = timedelta(hours=24)
"""How far after the current time an event's ``occurred_at`` may be."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EventId
    site: Annotated[str, Field(min_length=1, max_length=512)]
    occurred_at: AwareDatetime
    author: Author = None
    user_id: Author = None

    @field_validator("author", "user_id")
    @classmethod
    def _in_int64(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not -MAX_INT64 - 1 <= value <= MAX_INT64:
            raise ValueError("is outside the signed 64-bit integer range")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        # Far-future times would hold a delivery window open for years, and
        # near datetime.max the window end cannot even be computed.
        if value - datetime.now(UTC) > MAX_FUTURE:
            raise ValueError("is more than 24 hours in the future")
        return value

    @property
    def acting_user(self) -> int | str | None:
        """Return the user who made the change: ``author``, else ``user_id``."""
        return self.author if self.author is not None else self.user_id


class ISheetEvent(_Event):
    """An iSheet item was added or updated."""

    type: Literal["isheet_item_added", "isheet_item_updated"]
    isheet: Annotated[str, Field(min_length=1, max_length=512)]
    item_id: ContentId
    values: dict[str, Any] = Field(default_factory=dict)
    previous_values: dict[str, Any] | None = None

    @property
    def content_id(self) -> int:
        """Return the id HighQ's body calls ``contentID``: the item id."""
        return self.item_id


class FileEvent(_Event):
    """A file was added, or a new version of it uploaded."""

    type: Literal["file_added", "file_updated"]
    file_id: ContentId
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
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def parse_events(text: str) -> ParsedEvents:
    """Parse a JSON array, one JSON object or JSON Lines held in memory."""
    parsed = ParsedEvents()
    for batch in read_event_batches(io.BytesIO(text.encode("utf-8"))):
        parsed.events += batch.events
        parsed.problems += batch.problems
    return parsed


def read_event_batches(
    stream: BinaryIO,
    *,
    batch_size: int = BATCH_SIZE,
    batch_bytes: int = BATCH_BYTES,
) -> Iterator[ParsedEvents]:
    """Read events from a binary stream in batches of valid events and problems.

    A batch ends after ``batch_size`` events or ``batch_bytes`` of JSON text.
    Each problem comes in the batch of its line. Reading stops at a line that
    is too large, or at broken JSON in an array, and a problem reports why.
    """
    batch = ParsedEvents()
    size = 0
    for line, value, length in _read_values(stream):
        if isinstance(value, _Invalid):
            batch.problems.append((line, value.message))
        else:
            try:
                batch.events.append((line, validate_event(value)))
            except ValueError as exc:
                batch.problems.append((line, str(exc)))
        size += length
        if len(batch.events) + len(batch.problems) >= batch_size or size >= batch_bytes:
            yield batch
            batch = ParsedEvents()
            size = 0
    if batch.events or batch.problems:
        yield batch


@dataclass(frozen=True)
class _Invalid:
    message: str


_Value = tuple[int, object, int]  # line, decoded value or _Invalid, bytes read


def _read_values(stream: BinaryIO) -> Iterator[_Value]:
    number, first = _first_line(stream)
    if not first:
        return
    start = first.lstrip()
    if start.startswith(b"["):
        yield from _read_whole(stream, first, number, _array_values)
        return
    decoded = _decode_line(first, number)
    if decoded[1] == _Invalid(_TOO_LARGE):
        yield decoded
        return
    if isinstance(decoded[1], _Invalid) and start.startswith(b"{"):
        # Not one object per line: maybe a single object over several lines.
        yield from _read_whole(stream, first, number, _object_or_lines)
        return
    yield decoded
    yield from _read_lines(stream, number)


def _first_line(stream: BinaryIO) -> tuple[int, bytes]:
    # Skip blank lines, and a byte-order mark before the first character.
    number = 0
    while True:
        raw = stream.readline(MAX_EVENT_BYTES + 1)
        if not raw:
            return number, b""
        number += 1
        if number == 1:
            raw = raw.removeprefix(_BOM)
        if raw.strip() or len(raw) > MAX_EVENT_BYTES:
            return number, raw


def _read_lines(stream: BinaryIO, number: int) -> Iterator[_Value]:
    while raw := stream.readline(MAX_EVENT_BYTES + 1):
        number += 1
        if len(raw) > MAX_EVENT_BYTES and not raw.endswith(b"\n"):
            yield number, _Invalid(_TOO_LARGE), len(raw)
            return
        if raw.strip():
            yield _decode_line(raw, number)


_TOO_LARGE_EVENT = f"event larger than {MAX_EVENT_BYTES} bytes (1 MiB)"
_TOO_LARGE = f"{_TOO_LARGE_EVENT}; stopped reading the input here"


def _decode_line(raw: bytes, number: int) -> _Value:
    if len(raw) > MAX_EVENT_BYTES and not raw.endswith(b"\n"):
        return number, _Invalid(_TOO_LARGE), len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return number, _Invalid(f"not UTF-8 text ({exc.reason})"), len(raw)
    return number, _JsonDecoder().loads(text), len(raw)


def _read_whole(
    stream: BinaryIO,
    first: bytes,
    number: int,
    parse: Callable[[str, int], Iterator[_Value]],
) -> Iterator[_Value]:
    rest = stream.read(MAX_DOCUMENT_BYTES + 1 - len(first))
    data = first + rest
    if len(data) > MAX_DOCUMENT_BYTES:
        message = (
            f"input larger than {MAX_DOCUMENT_BYTES} bytes (50 MiB), the limit for "
            "a JSON array or an object over several lines; write one event per "
            "line (JSON Lines), which has no total limit"
        )
        yield number, _Invalid(message), 0
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield number, _Invalid(f"not UTF-8 text ({exc.reason})"), 0
        return
    yield from parse(text, number)


def _object_or_lines(text: str, first_number: int) -> Iterator[_Value]:
    single = _JsonDecoder().loads(text)
    if not isinstance(single, _Invalid):
        offset = len(text) - len(text.lstrip())
        length = len(text.encode("utf-8"))
        if length > MAX_EVENT_BYTES:
            single = _Invalid(_TOO_LARGE_EVENT)
        yield first_number + text.count("\n", 0, offset), single, length
        return
    for index, line in enumerate(text.splitlines(keepends=True)):
        if line.strip():
            yield _decode_line(line.encode("utf-8"), first_number + index)


def _array_values(text: str, first_number: int) -> Iterator[_Value]:
    # Decode element by element so each event keeps its line number, and a
    # broken element is reported where it starts.
    def line_of(index: int) -> int:
        return first_number + text.count("\n", 0, index)

    decoder = _JsonDecoder()
    index = text.index("[") + 1
    empty = True
    while True:
        index = _skip_space(text, index)
        if index < len(text) and text[index] == "]" and empty:
            return
        try:
            value, end = decoder.raw_decode(text, index)
        except (ValueError, RecursionError) as exc:
            message = _json_error(exc)
            yield line_of(index), _Invalid(f"{message}; stopped here"), 0
            return
        length = len(text[index:end].encode("utf-8"))
        if length > MAX_EVENT_BYTES:
            value = _Invalid(_TOO_LARGE_EVENT)
        yield line_of(index), value, length
        empty = False
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index += 1
            continue
        if index < len(text) and text[index] == "]":
            return
        message = "invalid JSON: expected ',' or ']' after an array element"
        yield line_of(index), _Invalid(message), 0
        return


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _json_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    return f"invalid JSON: {exc}"


class _JsonDecoder:
    """Decode JSON that an event may contain, as stricter ``json`` calls.

    Duplicate keys, NaN, Infinity, numbers beyond a float's range and nesting
    deeper than MAX_NESTING make the value invalid; ``json`` accepts them all.
    """

    def __init__(self) -> None:
        self.issue: str | None = None
        self._decoder = json.JSONDecoder(
            object_pairs_hook=self._object,
            parse_constant=self._constant,
            parse_float=self._float,
        )

    def loads(self, text: str) -> object:
        """Return the value of one JSON text, or an _Invalid with the reason."""
        self.issue = None
        try:
            value = self._decoder.decode(text)
        except (ValueError, RecursionError) as exc:
            return _Invalid(_json_error(exc))
        return self._checked(value)

    def raw_decode(self, text: str, index: int) -> tuple[object, int]:
        """Decode the value at ``index``; return it (or an _Invalid) and its end."""
        self.issue = None
        value, end = self._decoder.raw_decode(text, index)
        return self._checked(value), end

    def _checked(self, value: object) -> object:
        if self.issue is not None:
            issue, self.issue = self.issue, None
            return _Invalid(issue)
        if _depth(value) > MAX_NESTING:
            return _Invalid(f"nested deeper than {MAX_NESTING} arrays and objects")
        return value

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result and self.issue is None:
                self.issue = f"duplicate key {key!r}"
            result[key] = value
        return result

    def _constant(self, name: str) -> None:
        if self.issue is None:
            self.issue = f"{name} is not a JSON number"

    def _float(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value) and self.issue is None:
            self.issue = f"number {text[:40]} is out of range"
        return value


def _depth(value: object) -> int:
    # Iterative, so a deep value cannot exhaust the interpreter's stack.
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        current, level = pending.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_NESTING:
            return deepest
        pending.extend((child, level + 1) for child in children)
    return deepest

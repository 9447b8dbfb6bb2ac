"""Event input limits and checks: sizes, streaming, strict JSON, ranges, names."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hqsync.cli import cli
from hqsync.delivery.events import (
    MAX_DOCUMENT_BYTES,
    MAX_EVENT_BYTES,
    MAX_NESTING,
    parse_events,
    read_event_batches,
)
from hqsync.store import open_store
from hqsync.store.schema import events

from .helpers import closed_event
from .test_events_push import write_project


class EndlessBytes(io.RawIOBase):
    """A stream like /dev/zero that counts the bytes read from it."""

    def __init__(self, prefix: bytes = b"", fill: bytes = b"\0") -> None:
        self.prefix = prefix
        self.fill = fill
        self.read_count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        data = (self.prefix + self.fill * size)[:size]
        self.prefix = self.prefix[size:]
        buffer[:size] = data
        self.read_count += size
        return size


def _line(number: int, **changes: object) -> str:
    return json.dumps({**closed_event(number), **changes})


def _push(tmp_path: Path, text: str | bytes) -> tuple[int, str, str]:
    config = write_project(tmp_path)
    source = tmp_path / "events.input"
    source.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    result = CliRunner().invoke(
        cli, ["--config-dir", str(config), "events", "push", str(source)]
    )
    return result.exit_code, result.stdout, result.stderr


def _stored_ids(tmp_path: Path) -> list[str]:
    store = open_store(f"sqlite:///{tmp_path}/hqsync.db")
    with store.engine.connect() as connection:
        ids = connection.execute(sa.select(events.c.event_id)).scalars().all()
    store.close()
    return sorted(ids)


# Sizes and streaming ----------------------------------------------------------


def test_read_events_line_too_large_stops() -> None:
    big = _line(2, values={"status": "x" * MAX_EVENT_BYTES})
    text = "\n".join([_line(1), big, _line(3)]) + "\n"
    parsed = parse_events(text)
    assert [line for line, _ in parsed.events] == [1]
    assert len(parsed.problems) == 1
    assert parsed.problems[0][0] == 2
    assert "larger than 1048576 bytes" in parsed.problems[0][1]


def test_read_events_endless_zeros_bounded() -> None:
    source = EndlessBytes()
    batches = list(read_event_batches(io.BufferedReader(source)))
    problems = [problem for batch in batches for problem in batch.problems]
    assert len(problems) == 1
    assert "larger than" in problems[0][1]
    assert source.read_count < 4 * MAX_EVENT_BYTES


def test_read_events_endless_array_bounded() -> None:
    source = EndlessBytes(prefix=b"[", fill=b" ")
    batches = list(read_event_batches(io.BufferedReader(source)))
    problems = [problem for batch in batches for problem in batch.problems]
    assert len(problems) == 1
    assert "input larger than 52428800 bytes" in problems[0][1]
    assert source.read_count < MAX_DOCUMENT_BYTES + 4 * MAX_EVENT_BYTES


def test_read_events_array_element_too_large() -> None:
    big = _line(2, values={"status": "x" * MAX_EVENT_BYTES})
    parsed = parse_events(f"[{_line(1)},\n{big},\n{_line(3)}]")
    assert [line for line, _ in parsed.events] == [1, 3]
    assert parsed.problems[0][0] == 2
    assert "larger than 1048576 bytes" in parsed.problems[0][1]


def test_read_events_single_object_too_large() -> None:
    event = {**closed_event(1), "values": {"status": "x" * MAX_EVENT_BYTES}}
    parsed = parse_events(json.dumps(event, indent=2))
    assert parsed.events == []
    assert "larger than 1048576 bytes" in parsed.problems[0][1]


def test_read_events_batches_of_bounded_count() -> None:
    text = "\n".join(_line(number) for number in range(1, 1201))
    stream = io.BytesIO(text.encode("utf-8"))
    sizes = [len(batch.events) for batch in read_event_batches(stream)]
    assert sizes == [500, 500, 200]


def test_read_events_batches_of_bounded_bytes() -> None:
    text = "\n".join(_line(number) for number in range(1, 101))
    stream = io.BytesIO(text.encode("utf-8"))
    batches = list(read_event_batches(stream, batch_bytes=len(_line(1)) * 10))
    assert len(batches) == 10


def test_events_push_large_line_keeps_earlier(tmp_path: Path) -> None:
    big = _line(2, values={"status": "x" * MAX_EVENT_BYTES})
    code, stdout, stderr = _push(tmp_path, f"{_line(1)}\n{big}\n")
    assert code == 1
    assert "events.input:2: invalid event: event larger than" in stderr
    assert "accepted 1" in stdout
    assert _stored_ids(tmp_path) == ["evt-1"]


# Strict JSON -------------------------------------------------------------------


def test_read_events_duplicate_key_rejected() -> None:
    duplicated = _line(2)[:-1] + ', "item_id": 5}'
    parsed = parse_events("\n".join([_line(1), duplicated]))
    assert [line for line, _ in parsed.events] == [1]
    assert parsed.problems == [(2, "duplicate key 'item_id'")]


def test_read_events_duplicate_key_in_array() -> None:
    duplicated = _line(2)[:-1] + ', "site": "other"}'
    parsed = parse_events(f"[\n{_line(1)},\n{duplicated},\n{_line(3)}\n]")
    assert [line for line, _ in parsed.events] == [2, 4]
    assert parsed.problems == [(3, "duplicate key 'site'")]


def test_read_events_byte_order_mark_accepted() -> None:
    stream = io.BytesIO(b"\xef\xbb\xbf" + _line(1).encode("utf-8"))
    batches = list(read_event_batches(stream))
    assert [line for line, _ in batches[0].events] == [1]
    assert batches[0].problems == []


def test_read_events_deep_nesting_line() -> None:
    parsed = parse_events(_line(1) + "\n" + "[" * 100_000 + "]" * 100_000)
    assert [line for line, _ in parsed.events] == [1]
    assert parsed.problems == [(2, "invalid JSON: nested too deeply")]


def test_read_events_deep_nesting_array() -> None:
    parsed = parse_events("[" + _line(1) + ",\n" + "[" * 100_000)
    assert [line for line, _ in parsed.events] == [1]
    assert parsed.problems[0][0] == 2
    assert "nested too deeply" in parsed.problems[0][1]


def test_read_events_nesting_limit_in_values() -> None:
    deep: object = "leaf"
    for _ in range(MAX_NESTING):
        deep = [deep]
    parsed = parse_events(_line(1, values={"status": deep}))
    assert parsed.problems == [
        (1, f"nested deeper than {MAX_NESTING} arrays and objects")
    ]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_read_events_non_finite_number(literal: str) -> None:
    line = _line(1)[:-1] + f', "values": {{"amount": {literal}}}}}'
    parsed = parse_events(line.replace('"values": {"status": "Closed"}, ', ""))
    assert parsed.events == []
    assert literal in parsed.problems[0][1]


# Ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("item_id", 2**63),
        ("item_id", 99999999999999999999999999),
        ("author", 99999999999999999999999999),
        ("user_id", -(2**63) - 1),
    ],
)
def test_read_events_int64_range(field: str, value: int) -> None:
    parsed = parse_events(_line(1, **{field: value}))
    assert parsed.events == []
    assert f"isheet_item_updated.{field}: " in parsed.problems[0][1]


def test_read_events_file_id_int64_range() -> None:
    event = {
        "id": "file-1",
        "type": "file_added",
        "site": "litigation",
        "file_id": 2**63,
        "folder": "/Contracts",
        "name": "nda.pdf",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    parsed = parse_events(json.dumps(event))
    assert "file_added.file_id: " in parsed.problems[0][1]


def test_read_events_largest_int64_accepted() -> None:
    parsed = parse_events(_line(1, item_id=2**63 - 1, author=2**63 - 1))
    assert parsed.problems == []


def test_read_events_far_future_rejected() -> None:
    parsed = parse_events(_line(1, occurred_at="9999-12-31T23:59:59Z"))
    assert parsed.events == []
    assert parsed.problems == [
        (1, "isheet_item_updated.occurred_at: is more than 24 hours in the future")
    ]


def test_events_push_far_future_keeps_good(tmp_path: Path) -> None:
    lines = [_line(1), _line(2, occurred_at="9999-12-31T23:59:59Z"), _line(3)]
    code, stdout, stderr = _push(tmp_path, "\n".join(lines))
    assert code == 1
    assert "events.input:2: invalid event: isheet_item_updated.occurred_at" in stderr
    assert "accepted 2, duplicates 0, rejected 1" in stdout
    assert "Traceback" not in stderr
    assert _stored_ids(tmp_path) == ["evt-1", "evt-3"]


def test_events_push_deep_nesting_exit_1(tmp_path: Path) -> None:
    code, _, stderr = _push(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert code == 1
    assert "nested too deeply" in stderr
    assert "Traceback" not in stderr


# Sites and iSheets the instance lacks ----------------------------------------------


def test_events_push_unknown_site_reported(tmp_path: Path) -> None:
    lines = [_line(1)] + [_line(n, site="litigation-old") for n in (2, 3, 4)]
    code, stdout, stderr = _push(tmp_path, "\n".join(lines))
    assert code == 0
    assert "accepted 4" in stdout
    assert "3 events matched no site" in stderr
    assert "litigation-old (3)" in stderr
    assert len(_stored_ids(tmp_path)) == 4


def test_events_push_unknown_isheet_reported(tmp_path: Path) -> None:
    code, _, stderr = _push(tmp_path, _line(1, isheet="archive"))
    assert code == 0
    assert "1 event matched no iSheet" in stderr
    assert "litigation/archive (1)" in stderr


def test_events_push_known_names_no_warning(tmp_path: Path) -> None:
    code, _, stderr = _push(tmp_path, _line(1))
    assert code == 0
    assert "matched no" not in stderr

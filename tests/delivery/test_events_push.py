from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from hqsync.cli import cli
from hqsync.delivery.events import parse_events
from hqsync.store import open_store
from hqsync.store.schema import audit_records, events

from .helpers import closed_event, seed_store


def test_parse_events_array_keeps_line_numbers() -> None:
    text = "[\n" + json.dumps(closed_event(1)) + ',\n{"id": "x"}\n]'
    parsed = parse_events(text)
    assert [line for line, _ in parsed.events] == [2]
    assert [line for line, _ in parsed.problems] == [3]


def test_parse_events_single_object() -> None:
    parsed = parse_events(json.dumps(closed_event(1), indent=2))
    assert len(parsed.events) == 1
    assert parsed.problems == []


def test_parse_events_json_lines_bad_line() -> None:
    lines = [json.dumps(closed_event(1)), "{not json", "", json.dumps(closed_event(2))]
    parsed = parse_events("\n".join(lines))
    assert [line for line, _ in parsed.events] == [1, 4]
    assert parsed.problems[0][0] == 2
    assert parsed.problems[0][1].startswith("invalid JSON")


def test_parse_events_rejects_naive_time() -> None:
    event = closed_event(1)
    event["occurred_at"] = "2026-12-01T10:00:00"
    parsed = parse_events(json.dumps(event))
    assert "timezone" in parsed.problems[0][1]


def test_parse_events_rejects_unknown_field() -> None:
    event = closed_event(1)
    event["colour"] = "red"
    parsed = parse_events(json.dumps(event))
    assert "colour" in parsed.problems[0][1]


def test_parse_events_truncated_array() -> None:
    text = "[" + json.dumps(closed_event(1)) + ',\n{"id": '
    parsed = parse_events(text)
    assert len(parsed.events) == 1
    assert parsed.problems[0][0] == 2


def write_project(tmp_path: Path) -> Path:
    config = tmp_path / "configs"
    config.mkdir()
    (config / "hqsync.yaml").write_text(
        "default_instance: local\ninstances:\n  local:\n"
        f"    store: sqlite:///{tmp_path}/hqsync.db\n"
        "    allow_http: true\n"
    )
    store = open_store(f"sqlite:///{tmp_path}/hqsync.db")
    seed_store(store, url="http://127.0.0.1:9/hook")
    store.close()
    return config


def test_events_push_counts_and_duplicates(tmp_path: Path) -> None:
    config = write_project(tmp_path)
    lines = [json.dumps(closed_event(n)) for n in (1, 2, 1)]
    result = CliRunner().invoke(
        cli,
        ["--config-dir", str(config), "events", "push", "-"],
        input="\n".join(lines),
    )
    assert result.exit_code == 0, result.output
    assert "accepted 2, duplicates 1, rejected 0, deliveries created 2" in result.output


def test_events_push_second_push_is_duplicate(tmp_path: Path) -> None:
    config = write_project(tmp_path)
    source = tmp_path / "events.json"
    source.write_text(json.dumps([closed_event(1)]))
    args = ["--config-dir", str(config), "events", "push", str(source)]
    CliRunner().invoke(cli, args)
    result = CliRunner().invoke(cli, args)
    store = open_store(f"sqlite:///{tmp_path}/hqsync.db")
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
        records = conn.execute(
            sa.select(sa.func.count()).select_from(audit_records)
        ).scalar()
    store.close()
    assert "accepted 0, duplicates 1" in result.output
    assert stored == 1
    assert records == 2  # one delivery, one internal action


def test_events_push_bad_line_exits_1(tmp_path: Path) -> None:
    config = write_project(tmp_path)
    text = json.dumps(closed_event(1)) + '\n{"id": 3}\n'
    result = CliRunner().invoke(
        cli, ["--config-dir", str(config), "events", "push", "-"], input=text
    )
    assert result.exit_code == 1
    assert "<stdin>:2: invalid event" in result.output
    assert "accepted 1" in result.output


def test_events_push_records_internal_action_as_success(tmp_path: Path) -> None:
    config = write_project(tmp_path)
    CliRunner().invoke(
        cli,
        ["--config-dir", str(config), "events", "push", "-"],
        input=json.dumps(closed_event(1)),
    )
    store = open_store(f"sqlite:///{tmp_path}/hqsync.db")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_records)).all()
    store.close()
    internal = [row for row in rows if row.action_type == "internal"]
    assert internal[0].status == "success"
    assert internal[0].delivery_id is None


def test_events_push_unmatched_event_creates_nothing(tmp_path: Path) -> None:
    config = write_project(tmp_path)
    event = closed_event(1)
    event["values"] = {"status": "Open"}
    result = CliRunner().invoke(
        cli,
        ["--config-dir", str(config), "events", "push", "-"],
        input=json.dumps(event),
    )
    assert "accepted 1, duplicates 0, rejected 0, deliveries created 0" in result.output

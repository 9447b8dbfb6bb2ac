"""Plan rendering: text summary, markdown sections, JSON masking."""

from __future__ import annotations

import io
import json

from rich.console import Console

from hqsync.plan import render_json, render_markdown, render_text
from hqsync.store import Store

from .helpers import ENVIRON, ConfigDir, converge, plan_for


def _text(plan: object) -> str:
    buffer = io.StringIO()
    render_text(plan, Console(file=buffer, width=200))  # type: ignore[arg-type]
    return buffer.getvalue()


def test_render_text_summary_line(basic_config: ConfigDir, sqlite_store: Store) -> None:
    text = _text(plan_for(basic_config.load(ENVIRON), sqlite_store))
    assert "Plan: 11 to create, 0 to update, 0 to replace, 0 to delete." in text
    assert "+ rule litigation/new-matter [External] (create)" in text


def test_render_text_plain_without_terminal(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    text = _text(plan_for(basic_config.load(ENVIRON), sqlite_store))
    assert "\x1b[" not in text


def test_render_text_sensitive_change(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    plan = plan_for(
        basic_config.load({**ENVIRON, "CRM_SECRET": "rotated"}), sqlite_store
    )
    text = _text(plan)
    assert "auth.client_secret: (sensitive value changed)" in text
    assert "rotated" not in text


def test_render_json_masks_sensitive(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    plan = plan_for(
        basic_config.load({**ENVIRON, "CRM_SECRET": "rotated"}), sqlite_store
    )
    document = json.loads(render_json(plan))
    (crm,) = [c for c in document["changes"] if c["name"] == "crm"]
    (field,) = crm["changes"]
    assert crm["actions"] == ["update"]
    assert field == {
        "path": "auth.client_secret",
        "before": "(sensitive)",
        "after": "(sensitive)",
        "sensitive": True,
    }
    assert crm["sensitive_paths"] == ["auth.client_secret"]


def test_render_json_replace_actions(
    basic_config: ConfigDir, sqlite_store: Store
) -> None:
    converge(basic_config.load(ENVIRON), sqlite_store)
    site = (basic_config.root / "site.yaml").read_text()
    basic_config.write(
        "site.yaml", site.replace("{name: code}", "{name: code, type: date}")
    )
    document = json.loads(
        render_json(plan_for(basic_config.load(ENVIRON), sqlite_store))
    )
    (column,) = [c for c in document["changes"] if c["actions"] != ["no-op"]]
    assert column["actions"] == ["delete", "create"]
    assert column["reason"]


def test_render_markdown_escapes_html(
    config_dir: ConfigDir, sqlite_store: Store
) -> None:
    config_dir.write("site.yaml", "kind: Site\nname: a<b>&c\n")
    markdown = render_markdown(plan_for(config_dir.load(), sqlite_store))
    summaries = [line for line in markdown.splitlines() if line.startswith("<summary>")]
    assert summaries == [
        "<summary><code>+</code> site a&lt;b&gt;&amp;c (create)</summary>"
    ]

"""The plan commands end to end, as a user runs them: exit codes, files, output."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hqsync.cli import main

from .helpers import ENVIRON, ConfigDir

HQSYNC = str(Path(sys.executable).with_name("hqsync"))

HOLD_LOCK = """
import sys, time
from hqsync.store import open_store
store = open_store(sys.argv[1])
with store.lock("apply", "other-host pid 4242", 10):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@dataclass
class Result:
    """What one CLI invocation printed and returned."""

    returncode: int
    stdout: str
    stderr: str


def run(config: ConfigDir, *args: str, environ: dict[str, str] | None = None) -> Result:
    """Run ``hqsync --config-dir CONFIG ARGS`` in this process, without a terminal."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(config.root.parent),
        "HQSYNC_MASTER_KEY": MASTER_KEY,
        **ENVIRON,
        **(environ or {}),
    }
    stdout, stderr = io.StringIO(), io.StringIO()
    root_handlers = logging.getLogger().handlers[:]
    argv = ["hqsync", "--config-dir", str(config.root), *args]
    code: int | str | None = 0
    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch.object(sys, "argv", argv),
        mock.patch.object(sys, "stdin", io.StringIO("")),
        contextlib.chdir(config.root.parent),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    logging.getLogger().handlers[:] = root_handlers
    return Result(int(code or 0), stdout.getvalue(), stderr.getvalue())


def run_process(
    config: ConfigDir, *args: str, environ: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``hqsync --config-dir CONFIG ARGS`` as a separate process."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(config.root.parent),
        "HQSYNC_MASTER_KEY": MASTER_KEY,
        **ENVIRON,
        **(environ or {}),
    }
    return subprocess.Popen(
        [HQSYNC, "--config-dir", str(config.root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=config.root.parent,
    )


MASTER_KEY = Fernet.generate_key().decode()


def test_cli_plan_apply_plan_is_empty(basic_config: ConfigDir) -> None:
    saved = basic_config.root.parent / "plan.json"
    first = run(basic_config, "plan", "--out", str(saved), "--detailed-exitcode")
    applied = run(basic_config, "apply", str(saved))
    second = run(basic_config, "plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert "Plan: 11 to create, 0 to update, 0 to replace, 0 to delete." in first.stdout
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 11 created" in applied.stdout
    assert second.returncode == 0, second.stderr
    assert "No changes." in second.stdout


def test_cli_apply_stale_plan_rejected(basic_config: ConfigDir) -> None:
    saved = basic_config.root.parent / "plan.json"
    run(basic_config, "plan", "--out", str(saved))
    run(basic_config, "apply", "--auto-approve")
    result = run(basic_config, "apply", str(saved))
    assert result.returncode == 1
    assert "stale" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_apply_plan_stale_after_config_change(basic_config: ConfigDir) -> None:
    saved = basic_config.root.parent / "plan.json"
    run(basic_config, "plan", "--out", str(saved))
    result = run(basic_config, "apply", str(saved), environ={"INTAKE_KEY": "rotated"})
    assert result.returncode == 1
    assert "configuration (or a secret) changed" in result.stderr


def test_cli_apply_needs_auto_approve_without_terminal(basic_config: ConfigDir) -> None:
    result = run(basic_config, "apply")
    assert result.returncode == 1
    assert "--auto-approve" in result.stderr


def test_cli_apply_lock_timeout_names_holder(
    basic_config: ConfigDir, store_url: str
) -> None:
    basic_config.set_project(store=store_url)
    env = {**os.environ, "HQSYNC_MASTER_KEY": MASTER_KEY}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, store_url, "20"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        result = run(basic_config, "apply", "--auto-approve", "--lock-timeout", "0.5")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "other-host pid 4242" in result.stderr
    assert "timed out" in result.stderr


def test_cli_apply_waits_for_lock(basic_config: ConfigDir, store_url: str) -> None:
    basic_config.set_project(store=store_url)
    env = {**os.environ, "HQSYNC_MASTER_KEY": MASTER_KEY}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, store_url, "1.5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = run(basic_config, "apply", "--auto-approve", "--lock-timeout", "30")
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert waited > 0.5  # it really waited for the holder


def test_cli_two_concurrent_applies_serialise(
    basic_config: ConfigDir, store_url: str
) -> None:
    basic_config.set_project(store=store_url)
    run(basic_config, "store", "migrate")
    first = run_process(basic_config, "apply", "--auto-approve", "--lock-timeout", "30")
    second = run_process(
        basic_config, "apply", "--auto-approve", "--lock-timeout", "30"
    )
    outputs = [process.communicate(timeout=60) for process in (first, second)]
    results = [
        (process.returncode, err)
        for process, (_, err) in zip((first, second), outputs, strict=True)
    ]
    final = run(basic_config, "plan", "--detailed-exitcode")
    # Each apply either wins the lock and applies, or planned before the other
    # committed and is then rejected as stale; nothing is half-applied.
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        assert code == 0 or "changed since the plan was made" in err, err
    assert final.returncode == 0, final.stdout


def test_cli_plan_json_format(basic_config: ConfigDir) -> None:
    result = run(basic_config, "plan", "--format", "json")
    document = json.loads(result.stdout)
    (crm,) = [c for c in document["changes"] if c["name"] == "crm"]
    assert document["format_version"] == 1
    assert document["summary"]["create"] == 11
    assert crm["actions"] == ["create"]
    assert "auth.client_secret" in crm["sensitive_paths"]


def test_cli_plan_markdown_format(basic_config: ConfigDir) -> None:
    result = run(basic_config, "plan", "--format", "markdown")
    assert "| create | 11 |" in result.stdout
    assert result.stdout.count("<details>") == 11
    assert "rule litigation/closed-matter [Internal and External]" in result.stdout


def test_cli_list_rules_shows_type(basic_config: ConfigDir) -> None:
    run(basic_config, "apply", "--auto-approve")
    result = run(basic_config, "list", "rules")
    assert result.returncode == 0, result.stderr
    assert "External" in result.stdout
    assert "closed-matter" in result.stdout


def test_cli_list_services_shows_status(basic_config: ConfigDir) -> None:
    run(basic_config, "apply", "--auto-approve")
    result = run(basic_config, "list", "services")
    assert "active" in result.stdout
    assert "crm-signature" not in result.stdout


def test_cli_export_then_plan_only_secrets(
    basic_config: ConfigDir, tmp_path: Path
) -> None:
    run(basic_config, "apply", "--auto-approve")
    out = tmp_path / "exported"
    exported = run(basic_config, "export", "--out", str(out))
    (out / "hqsync.yaml").write_text((basic_config.root / "hqsync.yaml").read_text())
    placeholders = {
        "HQSYNC_INTAKE_KEY": ENVIRON["INTAKE_KEY"],
        "HQSYNC_CRM_URL": ENVIRON["CRM_URL"],
        "HQSYNC_CRM_CLIENT_SECRET": ENVIRON["CRM_SECRET"],
    }
    adopted = ConfigDir(out)
    plan = run(adopted, "plan", "--detailed-exitcode", environ=placeholders)
    assert exported.returncode == 0, exported.stderr
    assert "HQSYNC_CRM_CLIENT_SECRET" in exported.stdout
    assert ENVIRON["CRM_SECRET"] not in (out / "services.yaml").read_text()
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_cli_store_migrate_then_up_to_date(basic_config: ConfigDir) -> None:
    first = run(basic_config, "store", "migrate")
    second = run(basic_config, "store", "migrate")
    assert "Migrated store" in first.stdout
    assert "up to date" in second.stdout


def test_cli_newer_schema_is_clear_error(
    basic_config: ConfigDir, store_url: str
) -> None:
    basic_config.set_project(store=store_url)
    run(basic_config, "store", "migrate")
    engine = sa.create_engine(
        store_url.replace("postgresql://", "postgresql+psycopg://")
    )
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'zz99'"))
    engine.dispose()
    result = run(basic_config, "plan")
    assert result.returncode == 1
    assert "newer hqsync" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_cli_plan_detailed_exitcode_no_changes(
    basic_config: ConfigDir, fmt: str
) -> None:
    run(basic_config, "apply", "--auto-approve")
    result = run(basic_config, "plan", "--format", fmt, "--detailed-exitcode")
    assert result.returncode == 0

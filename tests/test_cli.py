"""The command-line entry point: lazy command loading and exit codes."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from hqsync.cli import COMMAND_MODULES, cli


def test_command_modules_cover_every_command() -> None:
    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"hqsync.cli.{module}")

    assert set(cli.commands) == set(COMMAND_MODULES)


def test_command_modules_define_their_commands() -> None:
    context = click.Context(cli)
    for name, module in COMMAND_MODULES.items():
        command = cli.get_command(context, name)

        assert command is not None, name
        assert command.callback is not None, name
        assert command.callback.__module__ == f"hqsync.cli.{module}", name


def test_keygen_imports_no_delivery_code() -> None:
    script = (
        "import sys; from hqsync.cli import main; sys.argv = ['hqsync', 'keygen']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('aiohttp', 'hqsync.delivery')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_command_exits_one() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hqsync", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "No such command 'no-such-command'" in result.stderr
    assert "Traceback" not in result.stderr


def test_internal_error_exits_three_without_message() -> None:
    # A bug's exception text may quote a secret, so only its type is shown.
    script = (
        "import sys\n"
        "import hqsync.cli.config_commands as commands\n"
        "def broken(*args, **kwargs):\n"
        "    raise RuntimeError('CANARY-SECRET')\n"
        "commands.secrets.token_urlsafe = broken\n"
        "from hqsync.cli import main\n"
        "sys.argv = ['hqsync', 'keygen']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "HQSYNC_TRACEBACK"},
    )

    assert result.returncode == 3
    assert "internal error RuntimeError" in result.stderr
    assert "CANARY-SECRET" not in result.stderr
    assert "Traceback" not in result.stderr


def test_interrupt_exits_130() -> None:
    script = (
        "import sys\n"
        "import hqsync.cli.config_commands as commands\n"
        "def interrupted(*args, **kwargs):\n"
        "    raise KeyboardInterrupt\n"
        "commands.secrets.token_urlsafe = interrupted\n"
        "from hqsync.cli import main\n"
        "sys.argv = ['hqsync', 'keygen']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )

    assert result.returncode == 130
    assert "Interrupted." in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        ["plan"],
        ["apply", "--auto-approve"],
        ["list", "rules"],
        ["export", "--out", "exported"],
        ["store", "migrate"],
        ["audit", "list"],
        ["run", "--once"],
        ["template", "export", "litigation", "--out", "-"],
    ],
)
def test_remote_instance_store_commands_fail(
    tmp_path: Path, arguments: list[str]
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "hqsync.yaml").write_text(
        "default_instance: remote\n"
        "instances:\n"
        "  remote:\n"
        "    url: https://user:CANARY-PASS@hqsync.internal.invalid:8443\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "hqsync", "--config-dir", str(configs), *arguments],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "instance remote is remote" in result.stderr
    assert "CANARY-PASS" not in result.stderr
    assert not (tmp_path / ".hqsync").exists()

"""The command-line entry point: lazy command loading and exit codes."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

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


def test_unknown_command_exits_with_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hqsync", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    assert "Traceback" not in result.stderr

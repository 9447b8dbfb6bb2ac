"""The ``hqsync`` command line: a thin layer over the library packages.

Only this package writes what users read; library code logs. Errors from the
``hqsync.errors`` tree map to exit codes here, in :func:`main`:
1 for a user error (usage errors included), 2 reserved for
``plan --detailed-exitcode``, 3 for a bug, 130 for Ctrl-C.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from hqsync import __version__
from hqsync.cli.context import AppContext, load_env_file, parse_vars, setup_logging
from hqsync.errors import HqsyncError

EXIT_USER_ERROR = 1
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

# Command name -> the module under hqsync.cli that defines it. Each module is
# imported only when one of its commands runs or help lists them all, because
# importing every library up front costs a second and about 90 MB per process.
COMMAND_MODULES = {
    "apply": "plan_commands",
    "audit": "audit_commands",
    "events": "run_commands",
    "export": "plan_commands",
    "keygen": "config_commands",
    "list": "plan_commands",
    "plan": "plan_commands",
    "run": "run_commands",
    "sandbox": "sandbox_commands",
    "schema": "config_commands",
    "store": "plan_commands",
    "template": "template_commands",
    "validate": "config_commands",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module on first use."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.lazy_commands.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            # The module's decorators add its commands to this group.
            importlib.import_module(f"hqsync.cli.{module}")
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMAND_MODULES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="hqsync")
@click.option(
    "--config-dir",
    default="configs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder with hqsync.yaml and the resource files.",
)
@click.option(
    "--instance", default=None, help="Instance to use (default: default_instance)."
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a template variable; repeatable; overrides hqsync.yaml.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output: -v info, -vv debug, -vvv SQL too.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log record format on stderr.",
)
@click.option(
    "--env-file",
    default=None,
    envvar="HQSYNC_ENV_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Read KEY=VALUE lines into the environment; variables already set win.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_dir: str,
    instance: str | None,
    variables: tuple[str, ...],
    verbose: int,
    log_format: str,
    env_file: str | None,
) -> None:
    """Manage HighQ-style workflow webhooks as code."""
    setup_logging(verbose, log_format)
    if env_file is not None:
        load_env_file(env_file)
    ctx.obj = AppContext(
        config_dir=config_dir,
        instance_name=instance,
        cli_vars=parse_vars(variables),
        verbose=verbose,
    )


def main() -> None:
    """Run the CLI and map the error tree to exit codes."""
    try:
        # Without standalone mode, click returns the code of ``ctx.exit(code)``
        # instead of exiting with it.
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # Usage errors exit 1 too, not click's 2, which plan --detailed-exitcode
        # keeps for "there are changes".
        exc.show()
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Abort as exc:
        # click raises Abort for Ctrl-C and for a prompt that reads end of file.
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_USER_ERROR)
    except HqsyncError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:  # anything else is a bug, reported in one place
        _report_bug(exc)
        sys.exit(EXIT_BUG)


def _report_bug(exc: Exception) -> None:
    # The exception's message may quote a secret value, so only its type and
    # where it was raised are printed; HQSYNC_TRACEBACK=1 shows everything.
    if os.environ.get("HQSYNC_TRACEBACK") == "1":
        traceback.print_exception(exc)
        return
    frames = traceback.extract_tb(exc.__traceback__)
    inner = next((f for f in reversed(frames) if "/hqsync/" in f.filename), None)
    where = f" in {Path(inner.filename).name}:{inner.lineno}" if inner else ""
    click.echo(
        f"hqsync: internal error {type(exc).__name__}{where}. This is a bug in "
        "hqsync: please report it with the command you ran (set "
        "HQSYNC_TRACEBACK=1 to see the traceback).",
        err=True,
    )

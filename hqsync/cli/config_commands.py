"""Commands about the configuration itself: validate, schema, keygen."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from hqsync.cli import cli
from hqsync.cli.context import AppContext
from hqsync.config import load_config
from hqsync.config.schema import build_schemas, render_schema, write_schemas
from hqsync.errors import ConfigError

KEY_BYTES = 32  # 256 bits, URL-safe base64 encoded

_KIND_NOUNS = {
    "ExternalService": ("external service", "external services"),
    "Site": ("site", "sites"),
    "Rule": ("rule", "rules"),
    "SiteTemplate": ("site template", "site templates"),
}


@cli.command()
def keygen() -> None:
    """Print a new random key for HighQ-Auth-Key (256 bits)."""
    click.echo(secrets.token_urlsafe(KEY_BYTES))


@cli.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Load, render and validate every configuration file.

    Prints a one-line summary, or every problem as file:line:column and exits 1.
    """
    app: AppContext = ctx.obj
    try:
        config = load_config(app.config_dir, app.instance_name, app.cli_vars)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        count = len(exc.problems)
        click.echo(f"{count} {'error' if count == 1 else 'errors'} in configuration")
        ctx.exit(1)
    counts = ", ".join(
        f"{number} {_KIND_NOUNS[kind][0 if number == 1 else 1]}"
        for kind, number in config.counts().items()
    )
    click.echo(
        f"Configuration is valid for instance '{config.instance_name}': {counts}"
    )


@cli.command()
@click.option(
    "--out",
    "out_dir",
    default="schemas",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write the JSON Schemas into.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if a schema in --out differs from the models.",
)
@click.pass_context
def schema(ctx: click.Context, out_dir: str, check: bool) -> None:
    """Write a JSON Schema per configuration kind, for editors."""
    directory = Path(out_dir)
    if check:
        stale = [
            name
            for name, content in build_schemas().items()
            if not _same_file(directory / name, render_schema(content))
        ]
        for name in stale:
            click.echo(f"{directory / name} is out of date", err=True)
        if stale:
            click.echo(f"run: hqsync schema --out {out_dir}", err=True)
            ctx.exit(1)
        click.echo(f"Schemas in {out_dir} are up to date")
        return
    written = write_schemas(directory)
    click.echo(f"Wrote {len(written)} schemas to {out_dir}")


def _same_file(path: Path, content: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == content
    except OSError:
        return False

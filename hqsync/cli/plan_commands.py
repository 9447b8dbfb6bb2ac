"""Commands on the live state: plan, apply, export, list, store migrate."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from hqsync.cli import cli
from hqsync.cli.context import AppContext, output_console
from hqsync.cli.instance import open_instance_store
from hqsync.config import LoadedConfig, load_config, load_project
from hqsync.errors import PlanError, UnsafePlan
from hqsync.plan import (
    Plan,
    apply_plan,
    check_saved_plan,
    export_live,
    load_plan,
    make_plan,
    render_json,
    render_markdown,
    render_text,
    save_plan,
)
from hqsync.plan.specs import canonical_spec
from hqsync.store import Store

EXIT_CHANGES = 2


def _load(app: AppContext) -> tuple[LoadedConfig, Store]:
    config = load_config(app.config_dir, app.instance_name, app.cli_vars)
    return config, open_instance_store(config)


def _console() -> Console:
    return output_console()


@cli.command()
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan to this file for `hqsync apply FILE`.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format: text for a terminal, markdown for a pull request, json.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 with no changes, 2 with changes, 1 on error.",
)
@click.pass_context
def plan(
    ctx: click.Context,
    out_file: Path | None,
    output_format: str,
    detailed_exitcode: bool,
) -> None:
    """Show how apply would change the instance to match the configuration."""
    app: AppContext = ctx.obj
    if out_file is not None and str(out_file) == "-":
        raise PlanError(
            "--out - is not supported: the plan already goes to stdout; give a "
            "file name for the saved plan"
        )
    config, store = _load(app)
    with store:
        result = make_plan(config, store, instance_name=config.instance_name)
    if output_format == "json":
        click.echo(render_json(result))
    elif output_format == "markdown":
        click.echo(render_markdown(result))
    else:
        render_text(result, _console())
    if out_file is not None:
        save_plan(result, out_file)
        click.echo(
            f"Saved the plan to {out_file}; apply it with: hqsync apply {out_file}",
            err=True,
        )
    if detailed_exitcode and result.has_changes:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument(
    "plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking for confirmation."
)
@click.option(
    "--force",
    is_flag=True,
    help="Apply even when the plan changes more than the safety threshold allows.",
)
@click.option(
    "--lock-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for another apply to release the instance lock.",
)
@click.pass_context
def apply(
    ctx: click.Context,
    plan_file: Path | None,
    auto_approve: bool,
    force: bool,
    lock_timeout: float,
) -> None:
    """Apply a saved plan exactly, or plan, confirm and apply."""
    app: AppContext = ctx.obj
    saved = load_plan(plan_file) if plan_file is not None else None
    config, store = _load(app)
    with store:
        current = make_plan(config, store, instance_name=config.instance_name)
        if saved is not None and plan_file is not None:
            check_saved_plan(saved, current, plan_file)
        else:
            render_text(current, _console())
        if not current.has_changes:
            click.echo("Nothing to apply.")
            return
        if saved is None:
            _confirm(current, auto_approve, force)
        result = apply_plan(
            store, current, config.instance, force=force, lock_timeout_s=lock_timeout
        )
    click.echo(
        f"Apply complete: {result.created} created, {result.updated} updated, "
        f"{result.replaced} replaced, {result.deleted} deleted (store serial "
        f"{result.serial})."
    )
    for service, key in sorted(result.generated_keys.items()):
        click.echo(
            f"Generated HighQ-Auth-Key for service {service} (shown only now; give "
            f"it to the receiving service): {key}"
        )


def _confirm(current: Plan, auto_approve: bool, force: bool) -> None:
    # Fail on the threshold before the prompt, not after the user confirms.
    if current.warnings and not force:
        raise UnsafePlan(
            "; ".join(current.warnings) + "; rerun with --force to apply anyway"
        )
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise PlanError(
            "no terminal to confirm on; review the plan and rerun with --auto-approve"
        )
    click.confirm(f"Apply these changes to instance {current.instance}?", abort=True)


@cli.command(name="export")
@click.option(
    "--out",
    "out_dir",
    default="exported",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the configuration files into; created if missing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite files in --out that the export writes (by default it "
    "lists them and writes nothing).",
)
@click.pass_context
def export_command(ctx: click.Context, out_dir: Path, force: bool) -> None:
    """Write the live state as configuration files, secrets as placeholders.

    Existing files that the export would write are left alone, and the command
    fails, unless --force is given. Other files in the folder are never touched.
    """
    app: AppContext = ctx.obj
    project = load_project(app.config_dir, app.instance_name)
    with open_instance_store(project) as store:
        variables = export_live(store, out_dir, force=force)
    click.echo(f"Exported instance {project.instance_name} to {out_dir}")
    if not any(out_dir.iterdir()):
        click.echo("The instance has no live resources, so no files were written.")
    if variables:
        click.echo("Set these environment variables before planning:")
        for name in variables:
            click.echo(f"  {name}")


@cli.command(name="list")
@click.argument("kind", type=click.Choice(["services", "sites", "rules"]))
@click.pass_context
def list_command(ctx: click.Context, kind: str) -> None:
    """Show the live services, sites or rules of the instance as a table."""
    app: AppContext = ctx.obj
    project = load_project(app.config_dir, app.instance_name)
    with open_instance_store(project) as store:
        live = store.read_resources()
    table = Table(box=None, header_style="bold")
    if kind == "services":
        for title in ("id", "name", "status", "auth", "url", "managed"):
            table.add_column(title, overflow="fold")
        for resource in (r for r in live if r.kind == "service"):
            spec = canonical_spec("service", resource.name, resource.spec)
            table.add_row(
                str(resource.id),
                resource.name,
                str(spec["status"]),
                str(spec["auth"].get("type")),
                str(spec["url"]),
                "yes" if resource.managed else "no",
            )
    elif kind == "sites":
        for title in ("id", "name", "title", "template", "managed"):
            table.add_column(title, overflow="fold")
        for resource in (r for r in live if r.kind == "site"):
            spec = canonical_spec("site", resource.name, resource.spec)
            table.add_row(
                str(resource.id),
                resource.name,
                str(spec["title"]),
                str(spec["template"] or ""),
                "yes" if resource.managed else "no",
            )
    else:
        for title in ("id", "site", "name", "type", "enabled", "trigger", "managed"):
            table.add_column(title, overflow="fold")
        for resource in (r for r in live if r.kind == "rule"):
            spec = canonical_spec("rule", resource.name, resource.spec)
            table.add_row(
                str(resource.id),
                resource.scope,
                resource.name,
                str(spec["rule_type"]),
                "yes" if spec["enabled"] else "no",
                str(spec["trigger"].get("type")),
                "yes" if resource.managed else "no",
            )
    _console().print(table)


@cli.group()
def store() -> None:
    """Manage the instance store itself."""


@store.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Migrate the instance store's schema to the one this hqsync uses."""
    app: AppContext = ctx.obj
    project = load_project(app.config_dir, app.instance_name)
    with open_instance_store(project, migrate=False) as opened:
        before, after = opened.migrate()
        display = opened.url_for_display
    if before == after:
        click.echo(f"Store {display} is up to date (schema revision {after}).")
    else:
        click.echo(
            f"Migrated store {display} from schema revision {before or 'none'} "
            f"to {after}."
        )

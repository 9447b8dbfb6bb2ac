"""The site template commands: ``hqsync template export`` and ``template import``."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import click

from hqsync import __version__
from hqsync.atomicfile import write_output
from hqsync.cli import cli
from hqsync.cli.context import AppContext
from hqsync.cli.instance import open_instance_store
from hqsync.cli.plan_commands import apply as apply_command
from hqsync.config import ProjectContext, load_config, load_project
from hqsync.config.documents import display_path
from hqsync.config.models import SiteTemplate
from hqsync.errors import TemplateError
from hqsync.store import LiveResource
from hqsync.templates import (
    ServiceResolution,
    check_overwrite,
    dump_documents,
    export_template,
    read_template,
    resolve_services,
    reuses_template,
    site_file_text,
    template_data,
    validate_staged,
)

_INSTANCE_HELP = "Instance to use; overrides the global --instance."


@cli.group()
def template() -> None:
    """Carry a site's iSheets, folders and rules to another instance."""


def _app(ctx: click.Context, instance: str | None) -> AppContext:
    app: AppContext = ctx.obj
    if instance is not None:
        app = dataclasses.replace(app, instance_name=instance)
        ctx.obj = app
    return app


def _read_live(project: ProjectContext) -> list[LiveResource]:
    with open_instance_store(project) as store:
        return store.read_resources()


# Export ----------------------------------------------------------------------


@template.command("export")
@click.argument("site")
@click.option(
    "--out",
    "out_file",
    required=True,
    metavar="FILE|-",
    help="File to write the template to, or - for standard output.",
)
@click.option("--name", default=None, help="Template name (default: the site name).")
@click.option("--instance", default=None, help=_INSTANCE_HELP)
@click.pass_context
def export_command(
    ctx: click.Context,
    site: str,
    out_file: str,
    name: str | None,
    instance: str | None,
) -> None:
    """Write a live site as a site template and print its dependency report.

    The template names iSheets, columns, folders, rules and services. It
    contains no instance ids and no secrets.
    """
    app = _app(ctx, instance)
    project = load_project(app.config_dir, app.instance_name)
    exported = export_template(_read_live(project), site, name=name)
    header = (
        f"# Site template exported by hqsync {__version__} from site '{site}' on "
        f"instance '{project.instance_name}'.\n"
        "# It contains no instance ids and no secrets. Import it with:\n"
        "#   hqsync template import FILE --site NAME [--map-service OLD=NEW]...\n"
    )
    text = dump_documents([template_data(exported)], header)
    if out_file == "-":
        click.echo(text, nl=False)
    else:
        write_output(out_file, text)
        click.echo(f"Wrote site template '{exported.name}' to {out_file}.")
    _print_dependencies(exported, err=out_file == "-")


def _print_dependencies(exported: SiteTemplate, *, err: bool) -> None:
    rules = {dependency.rule for dependency in exported.dependencies}
    if not rules:
        click.echo(
            f"Dependency report: no rule of site template '{exported.name}' calls "
            "an external service.",
            err=err,
        )
        return
    click.echo(
        f"Dependency report: {len(rules)} rules of site template '{exported.name}' "
        "call external services. Supply these on the target instance:",
        err=err,
    )
    rows = [
        [d.rule, d.service, d.auth_type, ", ".join(d.secrets) or "-"]
        for d in exported.dependencies
    ]
    _echo_table(["RULE", "SERVICE", "AUTH", "SECRETS TO SUPPLY"], rows, err=err)


def _echo_table(headings: list[str], rows: list[list[str]], *, err: bool) -> None:
    # Plain padded columns: never truncated or wrapped, so names can be copied.
    widths = [
        max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings))
    ]
    for row in [headings, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  " + "  ".join(cells).rstrip(), err=err)


# Import ----------------------------------------------------------------------


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise click.BadParameter(
                f"{pair!r} is not OLD=NEW", param_hint="'--map-service'"
            )
        if source in mapping and mapping[source] != target:
            raise click.BadParameter(
                f"service {source!r} is mapped twice ({mapping[source]!r} and "
                f"{target!r})",
                param_hint="'--map-service'",
            )
        mapping[source] = target
    return mapping


def _file_name(site: str) -> str:
    return re.sub(r"[^\w.-]+", "_", site).strip("._") or "site"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@template.command("import")
@click.argument(
    "template_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE"
)
@click.option("--site", required=True, help="Name of the new site on the target.")
@click.option("--title", default=None, help="Site title (default: the template's).")
@click.option(
    "--map-service",
    "map_service",
    multiple=True,
    metavar="OLD=NEW",
    help="Call service NEW where the template calls OLD; repeatable.",
)
@click.option(
    "--disable-unmapped",
    is_flag=True,
    help="Import rules whose services have no mapping, disabled, instead of failing.",
)
@click.option(
    "--out",
    "out_file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: sites/SITE.yaml in the config directory).",
)
@click.option("--apply", "apply_now", is_flag=True, help="Plan and apply afterwards.")
@click.option(
    "--auto-approve", is_flag=True, help="With --apply, apply without confirmation."
)
@click.option("--instance", default=None, help=_INSTANCE_HELP)
@click.pass_context
def import_command(
    ctx: click.Context,
    template_file: Path,
    site: str,
    title: str | None,
    map_service: tuple[str, ...],
    disable_unmapped: bool,
    out_file: Path | None,
    apply_now: bool,
    auto_approve: bool,
    instance: str | None,
) -> None:
    """Write a site made from a template into the configuration; apply it on request.

    The file contains the template and a Site with template and service_map, the
    same as writing that Site by hand. Nothing is written unless the whole
    configuration is valid with it.
    """
    if auto_approve and not apply_now:
        raise TemplateError("--auto-approve needs --apply")
    app = _app(ctx, instance)
    requested = _parse_map(map_service)
    config_dir = Path(app.config_dir)
    target = out_file or config_dir / "sites" / f"{_file_name(site)}.yaml"
    if apply_now and not _inside(target, config_dir):
        raise TemplateError(
            f"--apply needs the file inside the config directory {config_dir}, or "
            "the next plan would not see it; drop --out or choose a path inside it"
        )

    # Read the template the way the loader will read it: with the target's variables.
    config = load_config(config_dir, app.instance_name, app.cli_vars)
    imported = read_template(
        template_file, display_path(template_file), config.variables, os.environ
    )
    resolution = resolve_services(
        imported,
        config.services,
        _read_live(config),
        requested,
        disable_unmapped=disable_unmapped,
    )

    # Check the whole configuration with the new file before writing it.
    check_overwrite(target, site)
    include_template = not reuses_template(config, imported, target)
    header = (
        f"# Site '{site}' made from site template '{imported.name}' by "
        f"hqsync {__version__} (template import).\n"
    )
    text = site_file_text(
        imported,
        site,
        title or imported.description,
        resolution,
        include_template=include_template,
        header=header,
    )
    validate_staged(
        config_dir, target, text, instance=app.instance_name, cli_vars=app.cli_vars
    )
    write_output(target, text)
    _print_import(site, imported, resolution, target, include_template)

    if apply_now:
        ctx.invoke(apply_command, plan_file=None, auto_approve=auto_approve)


def _print_import(
    site: str,
    imported: SiteTemplate,
    resolution: ServiceResolution,
    target: Path,
    include_template: bool,
) -> None:
    reused = "" if include_template else " (the template is already declared)"
    click.echo(
        f"Wrote site '{site}' from site template '{imported.name}' to {target}{reused}."
    )
    if resolution.rules:
        rows = [
            [
                entry.rule,
                entry.service,
                entry.target or "(none: rule disabled)",
                entry.auth_type or "-",
            ]
            for entry in resolution.rules
        ]
        headings = ["RULE", "TEMPLATE SERVICE", "SERVICE ON TARGET", "AUTH"]
        _echo_table(headings, rows, err=False)
    for entry in resolution.rules:
        if entry.expected_auth_type and entry.auth_type not in (
            None,
            entry.expected_auth_type,
        ):
            click.echo(
                f"Note: rule '{entry.rule}' used {entry.expected_auth_type} auth for "
                f"'{entry.service}'; '{entry.target}' uses {entry.auth_type}."
            )
    disabled = resolution.disabled_rules
    if disabled:
        click.echo(
            f"Imported {len(disabled)} rules disabled because their services have "
            f"no mapping: {', '.join(disabled)}. Map the services and import again "
            "to enable them."
        )

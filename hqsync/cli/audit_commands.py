"""The ``hqsync audit`` commands: list, show, export, retry and prune."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine

from hqsync import audit
from hqsync.cli import cli
from hqsync.cli.context import AppContext, output_console
from hqsync.cli.instance import open_instance_store
from hqsync.config import ProjectContext, load_project
from hqsync.errors import AuditError

_STATUS_STYLES = {"success": "green", "failed": "red", "pending": "yellow"}


@contextlib.contextmanager
def _open_engine(ctx: click.Context) -> Iterator[tuple[Engine, ProjectContext]]:
    app = ctx.find_object(AppContext)
    if app is None:
        raise click.UsageError("hqsync audit must run under the hqsync command")
    project = load_project(app.config_dir, app.instance_name)
    store = open_instance_store(project)
    try:
        yield store.engine, project
    finally:
        store.close()


def _filter_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--status",
            "statuses",
            multiple=True,
            metavar="STATUS",
            help="pending, success or failed; repeatable.",
        ),
        click.option(
            "--rule",
            "rules",
            multiple=True,
            metavar="NAME",
            help="Rule name; repeatable.",
        ),
        click.option(
            "--service",
            "services",
            multiple=True,
            metavar="NAME",
            help="External service name; repeatable.",
        ),
        click.option(
            "--site",
            "sites",
            multiple=True,
            metavar="NAME",
            help="Site name; repeatable.",
        ),
        click.option(
            "--action",
            "actions",
            multiple=True,
            metavar="TYPE",
            help="send_to_external_service or internal; repeatable.",
        ),
        click.option(
            "--since",
            metavar="TIME",
            help="Records created at or after TIME: ISO 8601 (UTC if no "
            "offset) or a duration back from now such as 30m, 24h, 7d.",
        ),
        click.option(
            "--until",
            metavar="TIME",
            help="Records created before TIME, in the --since forms.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _build_filter(options: dict[str, Any]) -> audit.AuditFilter:
    return audit.AuditFilter.from_options(
        statuses=options.pop("statuses"),
        rules=options.pop("rules"),
        services=options.pop("services"),
        sites=options.pop("sites"),
        actions=options.pop("actions"),
        since=options.pop("since"),
        until=options.pop("until"),
    )


def _has_filters(audit_filter: audit.AuditFilter) -> bool:
    return audit_filter != audit.AuditFilter()


@cli.group("audit")
def audit_group() -> None:
    """Read, export, redeliver and prune the audit history."""


# list -------------------------------------------------------------------------


@audit_group.command("list")
@_filter_options
@click.option("--limit", default=50, show_default=True, help="Records per page.")
@click.option("--page", type=int, help="Page number, from 1 (newest first).")
@click.option(
    "--before",
    type=int,
    metavar="ID",
    help="Show records older than record ID (the cursor the last page prints).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.pass_context
def list_command(
    ctx: click.Context,
    /,
    limit: int,
    page: int | None,
    before: int | None,
    output_format: str,
    **options: Any,
) -> None:
    """List audit records, newest first."""
    audit_filter = _build_filter(options)
    with _open_engine(ctx) as (engine, project):
        instance = project.instance_name
        result = audit.list_records(
            engine, audit_filter, limit=limit, page=page, before=before
        )
    if output_format == "json":
        click.echo(json.dumps(_page_json(result, instance), indent=2))
        return
    _print_table(result)


def _page_json(result: audit.RecordPage, instance: str) -> dict[str, Any]:
    records = [
        {
            "id": summary.id,
            "created_at": audit.format_time(summary.created_at),
            "rule": summary.rule,
            "site": summary.site,
            "action_type": summary.action_type,
            "trigger_ref": summary.trigger.reference(instance),
            "service": summary.service,
            "status": summary.status,
            "attempt_count": summary.attempt_count,
        }
        for summary in result.records
    ]
    return {"records": records, "next_before": result.next_before}


_TABLE_COLUMNS = (
    "Time (UTC)",
    "ID",
    "Rule",
    "Action",
    "Triggering object",
    "Service",
    "Status",
    "Attempts",
)
_WRAPPING_COLUMNS = ("Rule", "Triggering object", "Service")


def _print_table(result: audit.RecordPage) -> None:
    console = output_console()
    if not result.records:
        console.print("No audit records match.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for header in _TABLE_COLUMNS:
        table.add_column(
            header,
            justify="right" if header in ("ID", "Attempts") else "left",
            no_wrap=header not in _WRAPPING_COLUMNS,
        )
    for summary in result.records:
        style = _STATUS_STYLES.get(summary.status, "")
        table.add_row(
            summary.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(summary.id),
            escape(f"{summary.site}/{summary.rule}"),
            "external"
            if summary.action_type == "send_to_external_service"
            else "internal",
            escape(summary.trigger.describe()),
            escape(summary.service or "-"),
            f"[{style}]{summary.status}[/]" if style else escape(summary.status),
            str(summary.attempt_count),
        )
    console.print(table)
    if result.next_before is not None:
        console.print(f"More records: add --before {result.next_before}")


# show -------------------------------------------------------------------------


@audit_group.command("show")
@click.argument("reference", metavar="ID|DELIVERY_ID")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.pass_context
def show_command(ctx: click.Context, reference: str, output_format: str) -> None:
    """Show one audit record in full, by record id or delivery id (a UUID).

    The detail covers what a support request needs: rule action detail, error
    message, API URL, request, every attempt and the triggering object.
    """
    with _open_engine(ctx) as (engine, project):
        detail = audit.find_record(engine, reference, instance=project.instance_name)
    if output_format == "json":
        document = {
            **detail.record,
            "attempts": detail.attempts,
            "retried_as": detail.retried_as,
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    click.echo(_detail_text(detail))


def _pretty(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, indent=2, ensure_ascii=False)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines() or [""])


def _summary_fields(detail: audit.RecordDetail) -> list[tuple[str, str]]:
    record = detail.record
    trigger = audit.Trigger.from_json(record["trigger_object"])
    service = record["service"] or "-"
    if record["service_id"] is not None:
        service += f" (id {record['service_id']})"
    retry_of = record["retry_of"]
    retry_text = (
        f"record {retry_of} (hqsync audit show {retry_of})" if retry_of else "-"
    )
    retried_as = ", ".join(f"record {i}" for i in detail.retried_as) or "-"
    return [
        ("Status", record["status"]),
        ("Created", record["created_at"]),
        ("Finished", record["finished_at"] or "-"),
        ("Rule", f"{record['rule']} (id {record['rule_id']}) on site {record['site']}"),
        ("Rule action", f"#{record['action_index']} {record['action_type']}"),
        ("Service", service),
        ("Triggering object", f"{trigger.describe()}  {record['trigger_ref']}"),
        ("Event", record["event_id"] or "-"),
        ("Delivery id", record["delivery_id"] or "-"),
        ("Attempts", str(record["attempt_count"])),
        ("Next attempt", record["next_attempt_at"] or "-"),
        ("Window closes", record["window_closes_at"] or "-"),
        ("Retry of", retry_text),
        ("Retried as", retried_as),
    ]


def _detail_text(detail: audit.RecordDetail) -> str:
    record = detail.record
    summary = _summary_fields(detail)
    width = max(len(label) for label, _ in summary) + 2
    lines = [f"Audit record {record['id']}", ""]
    lines += [f"{label + ':':<{width}}{value}" for label, value in summary]

    # Sections in the order of HighQ's audit detail window, which support requests.
    sections = [
        ("Rule action detail", _pretty(record["action_detail"])),
        ("Error message", record["error_message"] or "(none)"),
        ("API URL", record["api_url"] or "(none)"),
        ("Request headers", _headers_text(record["request_headers"])),
        ("Request body", _pretty(record["request_body"])),
    ]
    for title, body in sections:
        lines += ["", f"{title}:", _indent(body)]
    lines += ["", f"Attempts ({len(detail.attempts)}):"]
    lines += [_attempt_text(attempt) for attempt in detail.attempts] or ["  (none)"]
    return "\n".join(lines)


def _headers_text(headers: Any) -> str:
    if isinstance(headers, dict):
        return (
            "\n".join(f"{name}: {value}" for name, value in headers.items()) or "(none)"
        )
    return _pretty(headers)


def _attempt_text(attempt: dict[str, Any]) -> str:
    status = (
        f"HTTP {attempt['http_status']}" if attempt["http_status"] else "no response"
    )
    head = (
        f"  #{attempt['number']} {attempt['started_at']}  {status}  "
        f"{attempt['outcome']}  {attempt['duration_ms']:.1f} ms"
    )
    lines = [head]
    if attempt["error_class"] or attempt["error_message"]:
        error = ": ".join(
            filter(None, [attempt["error_class"], attempt["error_message"]])
        )
        lines.append(f"      error: {error}")
    if attempt["location"]:
        lines.append(f"      location: {attempt['location']}")
    if attempt["response_body"]:
        lines.append("      response (capped at 64 KiB):")
        lines += [f"        {line}" for line in attempt["response_body"].splitlines()]
    return "\n".join(lines)


# export -----------------------------------------------------------------------


@audit_group.command("export")
@_filter_options
@click.option(
    "--format",
    "export_format",
    type=click.Choice(list(audit.EXPORT_FORMATS)),
    default="csv",
    show_default=True,
    help="File format.",
)
@click.option(
    "--out",
    required=True,
    metavar="FILE",
    help="File to write, or - for stdout. A regular file is replaced only when "
    "complete; missing folders are created.",
)
@click.option(
    "--attempts",
    "per_attempt",
    is_flag=True,
    help="CSV only: one row per attempt instead of one per record.",
)
@click.pass_context
def export_command(
    ctx: click.Context,
    /,
    export_format: str,
    out: str,
    per_attempt: bool,
    **options: Any,
) -> None:
    """Export audit records, oldest first, with secrets redacted."""
    audit_filter = _build_filter(options)
    with _open_engine(ctx) as (engine, project):
        arguments: dict[str, Any] = {
            "export_format": export_format,
            "audit_filter": audit_filter,
            "instance": project.instance_name,
            "per_attempt": per_attempt,
        }
        count = audit.export_to_file(engine, out, **arguments)
    noun = "record" if count == 1 else "records"
    click.echo(
        f"Exported {count} {noun} to {'stdout' if out == '-' else out}.", err=True
    )


# retry ------------------------------------------------------------------------


@audit_group.command("retry")
@click.argument("record_ids", nargs=-1, type=int)
@click.option(
    "--failed",
    "all_failed",
    is_flag=True,
    help="Retry every failed delivery that matches the filters and has not "
    "been retried yet.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also redeliver successful or already retried records (by id).",
)
@_filter_options
@click.pass_context
def retry_command(
    ctx: click.Context,
    /,
    record_ids: tuple[int, ...],
    all_failed: bool,
    force: bool,
    **options: Any,
) -> None:
    """Redeliver webhook deliveries as new pending records.

    Each redelivery links to its original and gets a fresh confirmation window.
    """
    audit_filter = _build_filter(options)
    if all_failed and record_ids:
        raise AuditError("give record ids or --failed, not both")
    if all_failed and audit_filter.statuses:
        raise AuditError("--failed selects failed records; drop --status")
    if not all_failed and _has_filters(audit_filter):
        raise AuditError("filters apply to --failed only; add --failed or drop them")
    with _open_engine(ctx) as (engine, project):
        window = timedelta(seconds=project.instance.delivery.window_seconds)
        if all_failed:
            queued = audit.retry_failed(engine, audit_filter, window=window)
        else:
            queued = audit.retry_records(engine, record_ids, force=force, window=window)
    if not queued:
        click.echo("No failed deliveries to retry.")
        return
    noun = "redelivery" if len(queued) == 1 else "redeliveries"
    click.echo(f"Queued {len(queued)} {noun}:")
    for item in queued:
        click.echo(
            f"  record {item.original_id} -> record {item.record_id} "
            f"(delivery {item.delivery_id}; {item.site}/{item.rule} "
            f"to {item.service or '-'})"
        )
    click.echo("The runner delivers them on its next pass (hqsync run).")


# prune ------------------------------------------------------------------------


@audit_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="DURATION",
    help="Delete finished records created longer ago than this, such as 90d.",
)
@click.option("--yes", is_flag=True, help="Delete; without it, only count.")
@click.pass_context
def prune_command(ctx: click.Context, older_than: str, yes: bool) -> None:
    """Delete old finished audit records; pending ones are always kept."""
    age = audit.parse_duration(older_than, option="--older-than")
    with _open_engine(ctx) as (engine, _):
        if not yes:
            count = audit.count_prunable(engine, age)
        else:
            count = audit.prune(engine, age)
    cutoff = audit.format_time(count.cutoff)
    verb = "Deleted" if yes else "Would delete"
    click.echo(
        f"{verb} {count.records} records, {count.attempts} attempts and "
        f"{count.events} events created before {cutoff}."
    )
    if count.pending_spared:
        click.echo(f"Kept {count.pending_spared} pending records older than that.")
    if not yes:
        click.echo("Run again with --yes to delete them.")

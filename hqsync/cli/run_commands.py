"""The delivery commands: ``hqsync events push`` and ``hqsync run``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from typing import BinaryIO

import click

from hqsync.cli import cli
from hqsync.cli.context import AppContext
from hqsync.cli.instance import open_instance_store
from hqsync.config import ProjectContext, load_project
from hqsync.delivery.events import read_event_batches
from hqsync.delivery.metrics import RunnerMetrics
from hqsync.delivery.outbox import PushReport, push_events
from hqsync.delivery.runner import Mode, Runner, RunnerSettings, utc_now
from hqsync.errors import DeliveryError, EventError
from hqsync.store import Store

PROGRESS_SECONDS = 1.0


def _project(ctx: click.Context) -> ProjectContext:
    app = ctx.find_object(AppContext)
    if app is None:
        raise click.UsageError("this command must run under the hqsync command")
    return load_project(app.config_dir, app.instance_name)


@contextlib.contextmanager
def _store(project: ProjectContext) -> Iterator[Store]:
    store = open_instance_store(project)
    try:
        yield store
    finally:
        store.close()


@cli.group()
def events() -> None:
    """Enqueue trigger events for the delivery runner."""


@events.command("push")
@click.argument("source", metavar="FILE|-")
@click.pass_context
def events_push(ctx: click.Context, source: str) -> None:
    """Store events (JSON Lines, one object or a JSON array) and their deliveries.

    JSON Lines are read as a stream and stored in batches, with an event line
    at most 1 MiB; a JSON array or an object over several lines is read whole,
    at most 50 MiB. An event id seen before is skipped. Invalid events are
    reported by line number and the valid ones are still stored; the exit code
    is then 1.
    """
    project = _project(ctx)
    name = "<stdin>" if source == "-" else source
    report = PushReport()
    rejected = 0
    with _open_input(source) as stream, _store(project) as store:
        for batch in read_event_batches(stream):
            for line, message in batch.problems:
                click.echo(f"{name}:{line}: invalid event: {message}", err=True)
            rejected += len(batch.problems)
            events_only = [event for _, event in batch.events]
            report.add(push_events(store, project.instance, events_only, utc_now))
    click.echo(
        f"accepted {report.accepted}, duplicates {report.duplicates}, "
        f"rejected {rejected}, deliveries created {report.deliveries}, "
        f"internal actions {report.internal_actions}"
    )
    _warn_unknown(report.unknown_sites, "site")
    _warn_unknown(report.unknown_isheets, "iSheet")
    if rejected:
        ctx.exit(1)


@contextlib.contextmanager
def _open_input(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(source, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise EventError(f"cannot read {source}: {exc.strerror}") from None
    with stream:
        yield stream


def _warn_unknown(counts: Counter[str], kind: str) -> None:
    """Print how many stored events name a site or iSheet the instance lacks."""
    if not counts:
        return
    total = sum(counts.values())
    listed = ", ".join(f"{name} ({count})" for name, count in counts.most_common(10))
    if len(counts) > 10:
        listed += f", and {len(counts) - 10} more"
    stored = "event matched" if total == 1 else "events matched"
    click.echo(
        f"warning: {total} {stored} no {kind}: {listed}; stored, but no rule "
        "can fire for them",
        err=True,
    )


def _parse_bind(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(
            f"{value!r} is not HOST:PORT (for example 127.0.0.1:9464)",
            param_hint="'--metrics-bind'",
        )
    return host.strip("[]"), int(port)


@cli.command()
@click.option("--once", "mode", flag_value="once", help="Take one batch, then exit.")
@click.option(
    "--until-idle",
    "mode",
    flag_value="until_idle",
    help="Exit when nothing is due and nothing is in flight.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Deliveries in flight at once (default: the instance's delivery.concurrency).",
)
@click.option(
    "--metrics-bind",
    metavar="HOST:PORT",
    default=None,
    help="Serve Prometheus metrics on this address.",
)
@click.pass_context
def run(
    ctx: click.Context,
    mode: str | None,
    concurrency: int | None,
    metrics_bind: str | None,
) -> None:
    """Deliver due webhooks until SIGINT or SIGTERM, retrying inside the window."""
    bind = _parse_bind(metrics_bind)
    project = _project(ctx)
    with _store(project) as store:
        metrics = RunnerMetrics()
        if bind is not None:
            _serve_metrics(metrics, bind)
        runner = Runner(
            store,
            project.instance,
            settings=RunnerSettings.from_instance(project.instance, concurrency),
            metrics=metrics,
            base_dir=project.config_dir,
        )
        run_mode: Mode = "forever" if mode is None else mode  # type: ignore[assignment]
        asyncio.run(_run(runner, run_mode))
    stats = runner.stats
    click.echo(
        f"attempts {stats.attempts}: delivered {stats.succeeded}, "
        f"retrying {stats.retrying}, failed {stats.failed}",
        err=True,
    )


def _serve_metrics(metrics: RunnerMetrics, bind: tuple[str, int]) -> None:
    from prometheus_client import start_http_server

    try:
        start_http_server(bind[1], addr=bind[0], registry=metrics.registry)
    except OSError as exc:
        raise DeliveryError(
            f"cannot serve metrics on {bind[0]}:{bind[1]}: {exc.strerror}"
        ) from None


async def _run(runner: Runner, mode: Mode) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.stop)
    progress = None
    if sys.stderr.isatty():
        progress = asyncio.create_task(_show_progress(runner))
    try:
        await runner.run(mode)
    finally:
        if progress is not None:
            progress.cancel()
            click.echo("", err=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _show_progress(runner: Runner) -> None:
    while True:
        stats = runner.stats
        click.echo(
            f"\rdelivered {stats.succeeded}  retrying {stats.retrying}  "
            f"failed {stats.failed}  in flight {stats.in_flight}   ",
            nl=False,
            err=True,
        )
        await asyncio.sleep(PROGRESS_SECONDS)

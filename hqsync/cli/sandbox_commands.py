"""The ``hqsync sandbox`` command: a local receiver to test configurations against."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from hqsync.cli import cli
from hqsync.cli.context import AppContext
from hqsync.sandbox import SandboxConfig, SandboxUrls, parse_bind, serve_until_signal
from hqsync.sandbox.config import (
    CREDENTIAL_VARIABLES,
    DEFAULT_DELIVERY_ID_HEADER,
    DEFAULT_HOST,
    DEFAULT_PORT,
    FAIL_STATUSES,
)


@cli.command()
@click.option(
    "--bind",
    default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to listen on; port 0 picks a free port. Write IPv6 as [::1]:PORT.",
)
@click.option(
    "--allow-remote-bind",
    is_flag=True,
    help=(
        "Allow a host that is not loopback. The sandbox accepts its well-known "
        "sandbox credentials and echoes what it receives, so anyone who can "
        "reach it can use it."
    ),
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of webhook requests (0 to 1) that fail with --fail-status.",
)
@click.option(
    "--fail-status",
    type=click.Choice([str(status) for status in FAIL_STATUSES]),
    default="503",
    show_default=True,
    help="HTTP status of an injected failure.",
)
@click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Send Retry-After with this many seconds on injected failures.",
)
@click.option(
    "--slow",
    type=click.FloatRange(min=0.0, max=3600.0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Delay before each service endpoint responds, in seconds.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the --fail-rate random generator, for a repeatable run.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Append every delivery received to FILE as JSON Lines.",
)
@click.option(
    "--delivery-id-header",
    default=DEFAULT_DELIVERY_ID_HEADER,
    show_default=True,
    help="Request header that carries the delivery id.",
)
@click.option(
    "--pa-key",
    envvar=CREDENTIAL_VARIABLES["pa_key"],
    default=None,
    show_envvar=True,
    help="HighQ-Auth-Key the trigger expects (prefer the environment variable).",
)
@click.option(
    "--pa-sig",
    envvar=CREDENTIAL_VARIABLES["pa_sig"],
    default=None,
    show_envvar=True,
    help="sig query value the trigger expects (prefer the environment variable).",
)
@click.option(
    "--sf-client-id",
    envvar=CREDENTIAL_VARIABLES["sf_client_id"],
    default=None,
    show_envvar=True,
    help="OAuth2 client id the token endpoint accepts.",
)
@click.option(
    "--sf-client-secret",
    envvar=CREDENTIAL_VARIABLES["sf_client_secret"],
    default=None,
    show_envvar=True,
    help="OAuth2 client secret the token endpoint accepts (prefer the environment).",
)
@click.pass_obj
def sandbox(
    app: AppContext,
    bind: str,
    allow_remote_bind: bool,
    fail_rate: float,
    fail_status: str,
    retry_after: int | None,
    slow: float,
    seed: int | None,
    record: Path | None,
    delivery_id_header: str,
    pa_key: str | None,
    pa_sig: str | None,
    sf_client_id: str | None,
    sf_client_secret: str | None,
) -> None:
    """Run a local receiver that behaves like Power Automate and Salesforce.

    It checks credentials and the V1 body as those services would, records
    every delivery, and runs until Ctrl-C or SIGTERM.
    """
    host, port = parse_bind(bind)
    credentials = {
        "pa_key": pa_key,
        "pa_sig": pa_sig,
        "sf_client_id": sf_client_id,
        "sf_client_secret": sf_client_secret,
    }
    config = SandboxConfig(
        host=host,
        port=port,
        allow_remote_bind=allow_remote_bind,
        fail_rate=fail_rate,
        fail_status=int(fail_status),
        retry_after=retry_after,
        slow_seconds=slow,
        seed=seed,
        record_path=record,
        delivery_id_header=delivery_id_header,
        **{name: value for name, value in credentials.items() if value},
    )
    configured = {name for name, value in credentials.items() if value}
    if app.verbose == 0:
        # Show a line per request, as a development server does; -v shows more.
        logging.getLogger("hqsync.sandbox").setLevel(logging.INFO)

    def print_started(urls: SandboxUrls) -> None:
        _print_started(urls, config, configured)

    asyncio.run(serve_until_signal(config, print_started))
    click.echo("Sandbox stopped.")


def _print_started(
    urls: SandboxUrls, config: SandboxConfig, configured: set[str]
) -> None:
    # Print where each endpoint is and where its credential comes from, never
    # the credential itself.
    def source(name: str) -> str:
        return "set" if name in configured else "sandbox default"

    click.echo(f"Sandbox listening on {urls.base_url}")
    click.echo("  Power Automate trigger (returns 202):")
    click.echo(f"    {urls.trigger_url(with_signature=False)}&sig=<pa-sig>")
    click.echo(
        f"    HighQ-Auth-Key: <pa-key>  (pa-key: {source('pa_key')}, "
        f"pa-sig: {source('pa_sig')})"
    )
    click.echo("  Salesforce token endpoint (client credentials, no expires_in):")
    click.echo(f"    {urls.token_url}")
    click.echo(
        f"    client id: {source('sf_client_id')}, "
        f"client secret: {source('sf_client_secret')}"
    )
    click.echo("  Salesforce Apex REST (Bearer token, returns 201):")
    click.echo(f"    {urls.apex_url()}  (any path under /services/apexrest/)")
    click.echo(f"  Received deliveries: {urls.deliveries_url}")
    _print_misbehaviour(config)
    click.echo("Press Ctrl-C to stop.")


def _print_misbehaviour(config: SandboxConfig) -> None:
    if config.fail_rate > 0:
        seed = "random seed" if config.seed is None else f"seed {config.seed}"
        click.echo(
            f"  Failing {config.fail_rate:.0%} of webhook requests with "
            f"{config.fail_status} ({seed})"
        )
    if config.slow_seconds > 0:
        click.echo(f"  Responding after {config.slow_seconds:g} s")
    if config.record_path is not None:
        click.echo(f"  Recording deliveries to {config.record_path}")

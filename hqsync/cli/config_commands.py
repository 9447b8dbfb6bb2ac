"""Commands about the configuration itself: validate, schema, keygen."""

from __future__ import annotations

import secrets

import click

from hqsync.cli import cli

KEY_BYTES = 32  # 256 bits, URL-safe base64 encoded


@cli.command()
def keygen() -> None:
    """Print a new random key for HighQ-Auth-Key (256 bits)."""
    click.echo(secrets.token_urlsafe(KEY_BYTES))

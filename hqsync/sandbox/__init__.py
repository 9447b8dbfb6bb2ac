"""A loopback receiver that behaves like Power Automate and Salesforce.

It checks credentials and the V1 body as those services would, can fail or
respond slowly on purpose, and records every delivery it receives.
"""

from __future__ import annotations

from hqsync.sandbox.config import SandboxConfig, parse_bind
from hqsync.sandbox.recorder import ReceivedDelivery, TokenRequest
from hqsync.sandbox.server import SandboxServer, SandboxUrls, serve_until_signal

__all__ = [
    "ReceivedDelivery",
    "SandboxConfig",
    "SandboxServer",
    "SandboxUrls",
    "TokenRequest",
    "parse_bind",
    "serve_until_signal",
]

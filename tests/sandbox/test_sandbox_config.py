"""Sandbox settings: bind address, loopback rule, credentials, startup errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hqsync.errors import SandboxError
from hqsync.sandbox import SandboxConfig, SandboxServer, parse_bind

from .sandbox_helpers import CANARIES, CANARY_PA_KEY, canary_config


def test_parse_bind_ipv4() -> None:
    assert parse_bind("127.0.0.1:8780") == ("127.0.0.1", 8780)


def test_parse_bind_bracketed_ipv6() -> None:
    assert parse_bind("[::1]:9000") == ("::1", 9000)


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:", ":80", "::1:80", "h:x"])
def test_parse_bind_invalid_raises(value: str) -> None:
    with pytest.raises(SandboxError, match="invalid bind address"):
        parse_bind(value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "sandbox.invalid"])
def test_config_non_loopback_host_raises(host: str) -> None:
    with pytest.raises(SandboxError, match="--allow-remote-bind"):
        SandboxConfig(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_config_loopback_host_is_accepted(host: str) -> None:
    assert SandboxConfig(host=host).host == host


def test_config_remote_bind_allowed_by_flag() -> None:
    assert SandboxConfig(host="0.0.0.0", allow_remote_bind=True).host == "0.0.0.0"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fail_rate": 1.5}, "fail rate"),
        ({"fail_rate": -0.1}, "fail rate"),
        ({"fail_status": 404}, "fail status"),
        ({"slow_seconds": -1.0}, "slow"),
        ({"retry_after": -1}, "retry-after"),
        ({"port": 70000}, "port"),
        ({"pa_key": ""}, "pa_key"),
        ({"delivery_id_header": " "}, "delivery id header"),
    ],
)
def test_config_invalid_setting_raises(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(SandboxError, match=message):
        SandboxConfig(**settings)  # type: ignore[arg-type]


def test_config_repr_hides_credentials() -> None:
    text = repr(canary_config())
    for canary in CANARIES:
        assert canary not in text


def test_config_from_env_reads_credentials() -> None:
    config = SandboxConfig.from_env({"HQSYNC_SANDBOX_PA_KEY": CANARY_PA_KEY})
    assert config.pa_key == CANARY_PA_KEY


def test_config_from_env_keeps_given_credential() -> None:
    config = SandboxConfig.from_env(
        {"HQSYNC_SANDBOX_PA_KEY": "from-env"}, pa_key=CANARY_PA_KEY
    )
    assert config.pa_key == CANARY_PA_KEY


def test_config_from_env_ignores_empty_variable() -> None:
    config = SandboxConfig.from_env({"HQSYNC_SANDBOX_PA_SIG": ""})
    assert config.pa_sig == SandboxConfig().pa_sig


def test_server_port_in_use_raises() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = SandboxServer(canary_config(port=port))
        with pytest.raises(SandboxError, match="cannot listen"):
            server.start()


def test_server_unwritable_record_file_raises(tmp_path: Path) -> None:
    server = SandboxServer(canary_config(record_path=tmp_path / "missing" / "x.jsonl"))
    with pytest.raises(SandboxError, match="cannot open record file"):
        server.start()


def test_server_url_before_start_raises() -> None:
    with pytest.raises(SandboxError, match="not running"):
        _ = SandboxServer(canary_config()).url


def test_server_stop_twice_is_harmless() -> None:
    server = SandboxServer(canary_config()).start()
    server.stop()
    server.stop()
    with pytest.raises(SandboxError, match="not running"):
        _ = server.url


def test_server_restarts_after_stop() -> None:
    server = SandboxServer(canary_config()).start()
    server.stop()
    server.start()
    try:
        assert server.port > 0
    finally:
        server.stop()

"""``hqsync sandbox`` as a user runs it: a foreground process stopped by a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .sandbox_helpers import (
    CANARIES,
    CANARY_CLIENT_ID,
    CANARY_CLIENT_SECRET,
    CANARY_PA_KEY,
    CANARY_PA_SIG,
)

HQSYNC = [sys.executable, "-c", "from hqsync.cli import main; main()"]
CANARY_ENV = {
    "HQSYNC_SANDBOX_PA_KEY": CANARY_PA_KEY,
    "HQSYNC_SANDBOX_PA_SIG": CANARY_PA_SIG,
    "HQSYNC_SANDBOX_SF_CLIENT_ID": CANARY_CLIENT_ID,
    "HQSYNC_SANDBOX_SF_CLIENT_SECRET": CANARY_CLIENT_SECRET,
}

pytestmark = pytest.mark.timeout(60)


class RunningSandbox:
    """An ``hqsync sandbox`` process and the base URL it printed."""

    def __init__(self, process: subprocess.Popen[str], banner: list[str]) -> None:
        self.process = process
        self.banner = banner
        self.url = banner[0].rsplit(" ", 1)[-1]

    def stop(self, signal_number: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send a signal and return the exit code, all stdout and stderr."""
        self.process.send_signal(signal_number)
        rest, stderr = self.process.communicate(timeout=30)
        stdout = "\n".join(self.banner) + "\n" + rest
        return self.process.returncode, stdout, stderr


@pytest.fixture
def run_sandbox() -> Iterator[Any]:
    """Start ``hqsync sandbox`` processes; kill any still running afterwards."""
    processes: list[subprocess.Popen[str]] = []

    def run(*options: str, verbosity: tuple[str, ...] = ("-vv",)) -> RunningSandbox:
        process = subprocess.Popen(
            [*HQSYNC, *verbosity, "sandbox", "--bind", "127.0.0.1:0", *options],
            env={**os.environ, **CANARY_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        banner = []
        for line in process.stdout:
            banner.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                return RunningSandbox(process, banner)
        _, stderr = process.communicate()
        raise AssertionError(f"sandbox exited early: {stderr}")

    yield run
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _exercise(url: str, body: dict[str, Any]) -> None:
    # Requests that succeed and fail, so every credential is sent and checked.
    trigger = (
        f"{url}/powerautomate/workflows/flow-1/triggers/manual/paths/invoke"
        f"?api-version=2016-06-01&sig={CANARY_PA_SIG}"
    )
    with httpx.Client(timeout=10.0) as client:
        client.post(trigger, json=body, headers={"HighQ-Auth-Key": CANARY_PA_KEY})
        client.post(trigger, json=body, headers={"HighQ-Auth-Key": "wrong"})
        token = client.post(
            f"{url}/services/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(CANARY_CLIENT_ID, CANARY_CLIENT_SECRET),
        ).json()["access_token"]
        client.post(
            f"{url}/services/apexrest/highq",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )


def test_cli_sandbox_serves_until_sigterm(
    run_sandbox: Any, isheet_body: dict[str, Any]
) -> None:
    sandbox = run_sandbox()
    _exercise(sandbox.url, isheet_body)
    deliveries = httpx.get(f"{sandbox.url}/_sandbox/deliveries").json()
    code, stdout, _ = sandbox.stop()
    assert [d["status"] for d in deliveries] == [202, 401, 201]
    assert code == 0
    assert "Sandbox stopped." in stdout


def test_cli_sandbox_stops_on_sigint(run_sandbox: Any) -> None:
    code, stdout, _ = run_sandbox().stop(signal.SIGINT)
    assert code == 0
    assert "Sandbox stopped." in stdout


def test_cli_sandbox_prints_endpoint_urls(run_sandbox: Any) -> None:
    sandbox = run_sandbox()
    banner = "\n".join(sandbox.banner)
    sandbox.stop()
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert f"{sandbox.url}/services/oauth2/token" in banner
    assert f"{sandbox.url}/services/apexrest/" in banner
    assert "/triggers/manual/paths/invoke?api-version=" in banner


def test_cli_sandbox_output_has_no_credential(
    run_sandbox: Any, isheet_body: dict[str, Any]
) -> None:
    sandbox = run_sandbox("--fail-rate", "0.3", "--seed", "1")
    _exercise(sandbox.url, isheet_body)
    _, stdout, stderr = sandbox.stop()
    for canary in CANARIES:
        assert canary not in stdout
        assert canary not in stderr


def test_cli_sandbox_logs_each_delivery_by_default(
    run_sandbox: Any, isheet_body: dict[str, Any]
) -> None:
    sandbox = run_sandbox(verbosity=())
    _exercise(sandbox.url, isheet_body)
    _, _, stderr = sandbox.stop()
    assert stderr.count("hqsync.sandbox.app: delivery ") == 3


def _run_to_end(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HQSYNC, "sandbox", *arguments],
        env={**os.environ, **CANARY_ENV},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_cli_sandbox_remote_bind_exits_1() -> None:
    result = _run_to_end("--bind", "0.0.0.0:0")
    assert result.returncode == 1
    assert "--allow-remote-bind" in result.stderr


def test_cli_sandbox_port_in_use_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run_to_end("--bind", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def test_cli_sandbox_bad_fail_rate_exits_1() -> None:
    result = _run_to_end("--fail-rate", "2")
    assert result.returncode == 1
    assert "--fail-rate" in result.stderr

"""The quick start (``make run``): the whole job, end to end, on loopback only.

It runs the same ``hqsync`` commands a user would and prints each one first.
It validates, plans and applies ``configs/`` to the ``local`` instance, then
starts the sandbox receiver and pushes the sample events, stamped with the
current time. The delivery runner runs until idle. Last come a summary, the
audit history as CSV, and the sandbox's stop. Exit status 0 means every
webhook was confirmed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

PREFERRED_PORT = 8780  # the port configs/sandbox.env and hqsync.yaml name
SANDBOX_START_TIMEOUT = 20.0  # seconds
SANDBOX_ENV = {  # sandbox option variable -> variable in configs/sandbox.env
    "HQSYNC_SANDBOX_SF_CLIENT_ID": "SF_CLIENT_ID",
    "HQSYNC_SANDBOX_SF_CLIENT_SECRET": "SF_CLIENT_SECRET",
    "HQSYNC_SANDBOX_PA_KEY": "PA_HIGHQ_AUTH_KEY",
}


@dataclass(frozen=True)
class Paths:
    """Input files and the state folder of one quick-start run."""

    config_dir: Path
    env_file: Path
    events: Path
    state_dir: Path

    @property
    def plan_file(self) -> Path:
        return self.state_dir / "quickstart.plan"

    @property
    def stamped_events(self) -> Path:
        return self.state_dir / "quickstart-events.jsonl"

    @property
    def audit_csv(self) -> Path:
        return self.state_dir / "audit-export.csv"

    @property
    def sandbox_record(self) -> Path:
        return self.state_dir / "sandbox-deliveries.jsonl"

    @property
    def sandbox_log(self) -> Path:
        return self.state_dir / "sandbox.log"

    @property
    def port_file(self) -> Path:
        return self.state_dir / "quickstart.json"


class QuickstartError(Exception):
    """A step failed; the message names the step and the file to read."""


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the sandbox's server does, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def choose_port(paths: Paths) -> int:
    """Reuse the last run's sandbox port, else 8780, else any free port.

    Keeping the port keeps the services' URLs, so a second run plans no changes.
    """
    if paths.port_file.exists():
        port = int(json.loads(paths.port_file.read_text())["port"])
        if _port_is_free(port):
            return port
    if _port_is_free(PREFERRED_PORT):
        port = PREFERRED_PORT
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    paths.port_file.write_text(json.dumps({"port": port}) + "\n")
    return port


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def build_environment(paths: Paths, port: int) -> dict[str, str]:
    """Give hqsync and the sandbox the same sandbox-only credentials."""
    values = {k: v for k, v in dotenv_values(paths.env_file).items() if v is not None}
    environment = dict(os.environ)
    for key, value in values.items():
        environment.setdefault(key, value)
    trigger_url = _with_port(environment["PA_TRIGGER_URL"], port)
    environment["PA_TRIGGER_URL"] = trigger_url
    for sandbox_variable, config_variable in SANDBOX_ENV.items():
        environment[sandbox_variable] = environment[config_variable]
    signature = dict(
        pair.split("=", 1)
        for pair in urlsplit(trigger_url).query.split("&")
        if "=" in pair
    ).get("sig")
    if signature:
        environment["HQSYNC_SANDBOX_PA_SIG"] = signature
    return environment


class Runner:
    """Run ``hqsync`` commands with shared global options, echoing each one."""

    def __init__(self, paths: Paths, port: int, environment: dict[str, str]) -> None:
        base_url = f"http://127.0.0.1:{port}"
        self.global_options = [
            "--config-dir",
            str(paths.config_dir),
            "--instance",
            "local",
            "--var",
            f"sandbox_base_url={base_url}",
            "--var",
            f"salesforce_base_url={base_url}",
        ]
        self.environment = environment

    def command(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "hqsync", *self.global_options, *arguments]

    def run(self, *arguments: str, capture: bool = False) -> str:
        shown = shlex.join(["hqsync", *arguments])
        # A captured command's output is read here, not printed, so the echoed
        # command line carries a note.
        note = "  # read back for the summary" if capture else ""
        print(f"\n$ {shown}{note}", flush=True)
        result = subprocess.run(
            self.command(*arguments),
            env=self.environment,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            check=False,
        )
        if result.returncode != 0:
            if result.stderr:
                print(result.stderr, end="", file=sys.stderr)
            raise QuickstartError(f"'{shown}' exited with {result.returncode}")
        return result.stdout or ""


def stamp_events(source: Path, target: Path, now: datetime) -> int:
    """Copy the sample events with the current time and a per-run id suffix."""
    suffix = now.strftime("%Y%m%dT%H%M%S")
    occurred_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = []
    for line in source.read_text().splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        event["id"] = f"{event['id']}-{suffix}"
        event["occurred_at"] = occurred_at
        lines.append(json.dumps(event))
    target.write_text("\n".join(lines) + "\n")
    return len(lines)


def start_sandbox(runner: Runner, paths: Paths, port: int) -> subprocess.Popen[bytes]:
    """Start ``hqsync sandbox`` in the background and wait until it is healthy."""
    arguments = ["sandbox", "--bind", f"127.0.0.1:{port}"]
    arguments += ["--record", str(paths.sandbox_record)]
    print(f"\n$ {shlex.join(['hqsync', *arguments])} &", flush=True)
    paths.sandbox_record.unlink(missing_ok=True)
    log = paths.sandbox_log.open("wb")
    process = subprocess.Popen(
        runner.command(*arguments),
        env=runner.environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + SANDBOX_START_TIMEOUT
    health = f"http://127.0.0.1:{port}/_sandbox/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise QuickstartError(f"the sandbox exited early; see {paths.sandbox_log}")
        try:
            with urllib.request.urlopen(health, timeout=1) as response:
                if response.status == 200:
                    print(f"sandbox listening on http://127.0.0.1:{port}", flush=True)
                    return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise QuickstartError(f"the sandbox did not start in time; see {paths.sandbox_log}")


def stop_sandbox(process: subprocess.Popen[bytes]) -> None:
    """Stop the sandbox with SIGTERM, as a service manager would."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summarise(runner: Runner, since: datetime, pushed: int) -> int:
    """Print this run's deliveries by service and status; return how many failed."""
    # Read this run's records back the way a user's tool would: the export.
    started = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    output = runner.run(
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        "-",
        "--since",
        started,
        capture=True,
    )
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    external = [r for r in records if r["action_type"] == "send_to_external_service"]
    internal = len(records) - len(external)

    by_service = Counter((r["service"], r["status"]) for r in external)
    print("\nSummary of this run")
    print(f"  {'events pushed:':<24}{pushed}")
    print(
        f"  {'rule actions fired:':<24}{len(records)} "
        f"({len(external)} webhooks, {internal} internal)"
    )
    for service in sorted({name for name, _ in by_service}):
        counts = ", ".join(
            f"{by_service[(service, status)]} {status}"
            for status in ("success", "failed", "pending")
            if by_service[(service, status)]
        )
        print(f"  {service + ':':<24}{counts}")
    return sum(1 for r in external if r["status"] != "success")


def parse_arguments(argv: list[str] | None) -> Paths:
    parser = argparse.ArgumentParser(
        prog="python -m hqsync.cli.quickstart", description=__doc__
    )
    parser.add_argument("--config-dir", default="configs", type=Path)
    parser.add_argument(
        "--env-file", default=None, type=Path, help="default: CONFIG_DIR/sandbox.env"
    )
    parser.add_argument("--events", default="examples/events.jsonl", type=Path)
    parser.add_argument("--state-dir", default=".hqsync", type=Path)
    options = parser.parse_args(argv)
    return Paths(
        config_dir=options.config_dir,
        env_file=options.env_file or options.config_dir / "sandbox.env",
        events=options.events,
        state_dir=options.state_dir,
    )


def run_quickstart(paths: Paths) -> int:
    """Run the whole job once; return the process exit status."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    port = choose_port(paths)
    runner = Runner(paths, port, build_environment(paths, port))

    # Make the instance match configs/: a saved plan is applied exactly.
    runner.run("validate")
    runner.run("plan", "--out", str(paths.plan_file))
    runner.run("apply", "--auto-approve", str(paths.plan_file))

    sandbox = start_sandbox(runner, paths, port)
    try:
        started = datetime.now(UTC).replace(microsecond=0)
        pushed = stamp_events(paths.events, paths.stamped_events, started)
        runner.run("events", "push", str(paths.stamped_events))
        runner.run("run", "--until-idle")
        failed = summarise(runner, started, pushed)
        runner.run("audit", "export", "--format", "csv", "--out", str(paths.audit_csv))
        print(f"audit history of every run so far written to {paths.audit_csv}")
    finally:
        stop_sandbox(sandbox)
    print(f"sandbox stopped; what it received is in {paths.sandbox_record}")
    if failed:
        print(
            f"\n{failed} webhook deliveries did not succeed; "
            "see them with: hqsync audit list --status failed"
        )
        return 1
    print("\nDone: every webhook was delivered and confirmed.")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Run the quick start from the command line."""
    paths = parse_arguments(argv)
    try:
        sys.exit(run_quickstart(paths))
    except QuickstartError as exc:
        print(f"\nQuick start failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

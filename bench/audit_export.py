"""Benchmark ``hqsync audit export --format csv`` against ``sqlite3 -csv``.

Fills a fresh SQLite store (made by open_store) with N audit records and one
event each, then times, in the same run, the sqlite3 command-line shell dumping the
``audit_records`` table as CSV and ``hqsync audit export`` writing its CSV.
Peak RSS comes from GNU time (/usr/bin/time). Not part of the tests.

    .venv/bin/python bench/audit_export.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hqsync.store import open_store

START = datetime(2026, 1, 1, tzinfo=UTC)
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Run:
    """One timed child process."""

    seconds: float
    peak_rss_mb: float
    output_bytes: int


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (UTC, no offset).
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _records(count: int) -> Iterator[tuple[object, ...]]:
    for number in range(1, count + 1):
        created = START + timedelta(seconds=number)
        status = ("success", "failed", "success", "pending")[number % 4]
        body = {
            "instanceId": 1,
            "instanceBaseUrl": "https://hqsync.example.invalid",
            "timezone": "UTC",
            "siteId": 12,
            "workflowVersion": "V1",
            "author": 501,
            "moduleAlias": "SITE_MODULE_ISHEET",
            "operation": "EDIT_ITEM",
            "contentID": number,
            "isheetID": 34,
            "columnIds": [101, 102, 103],
            "workflowId": 77,
            "ruleId": 77,
            "ruleExecutionTimestamp": created.isoformat(),
        }
        yield (
            number,
            number,
            77,
            "closed-matter-to-salesforce",
            "litigation",
            0,
            "send_to_external_service",
            json.dumps(
                {
                    "type": "send_to_external_service",
                    "service": "salesforce",
                    "columns": ["matter_id", "status"],
                }
            ),
            json.dumps(
                {
                    "kind": "isheet_item",
                    "site": "litigation",
                    "isheet": "matters",
                    "item_id": number,
                }
            ),
            3,
            "salesforce",
            f"dlv-{number:012d}",
            status,
            "https://sf.example.invalid/services/apexrest/highq/notify?sig=REDACTED",
            json.dumps(
                {
                    "Content-Type": "application/json",
                    "Authorization": "Bearer REDACTED",
                    "HighQ-Delivery-Id": f"dlv-{number:012d}",
                }
            ),
            json.dumps(body),
            2,
            None,
            _sqlite_time(created + timedelta(hours=1)),
            "HTTP 500 from the service" if status == "failed" else None,
            _sqlite_time(created),
            None
            if status == "pending"
            else _sqlite_time(created + timedelta(seconds=5)),
        )


def _fill(database: Path, count: int) -> None:
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    events = (
        (
            n,
            f"evt-{n}",
            "isheet_item_updated",
            "litigation",
            "{}",
            _sqlite_time(START + timedelta(seconds=n)),
            _sqlite_time(START + timedelta(seconds=n)),
        )
        for n in range(1, count + 1)
    )
    connection.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", events)
    connection.executemany(
        "INSERT INTO audit_records (id, event_pk, rule_id, rule_name, site_name, "
        "action_index, action_type, action_detail, trigger_object, service_id, "
        "service_name, delivery_id, status, api_url, request_headers, request_body, "
        "attempt_count, next_attempt_at, window_closes_at, error_message, created_at, "
        "finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        _records(count),
    )
    connection.commit()
    connection.close()


def _run(command: Sequence[str], out: Path, cwd: Path) -> Run:
    # GNU time reports the child's peak RSS. wait4 on our own child would not:
    # Linux keeps the RSS high-water mark across fork and exec, so every child
    # would inherit this process's peak.
    rss_file = out.with_suffix(".rss")
    with out.open("wb") as handle:
        started = time.perf_counter()
        completed = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", str(rss_file), *command],
            stdout=handle,
            cwd=cwd,
            check=False,
        )
        seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} exited with {completed.returncode}")
    peak_kib = int(rss_file.read_text().split()[-1])
    return Run(seconds, peak_kib / 1024, out.stat().st_size)


# The export alone, without the CLI importing every other command module.
LIBRARY_EXPORT = """
import sys
from hqsync.audit import AuditFilter, export_records
from hqsync.store import open_store
with open_store("sqlite:///.hqsync/local.db") as store:
    export_records(store.engine, sys.stdout, export_format="csv",
                   audit_filter=AuditFilter(), instance="local")
"""

# The plainest Python dump of the same table: the floor for Python code.
PYTHON_DUMP = """
import csv, sqlite3, sys
rows = sqlite3.connect(".hqsync/local.db").execute("SELECT * FROM audit_records")
csv.writer(sys.stdout).writerows(rows)
"""


def _prepare(arguments: argparse.Namespace) -> Path:
    if arguments.folder:
        folder = Path(arguments.folder)
        if not (folder / ".hqsync" / "local.db").is_file():
            raise SystemExit(f"{folder} has no .hqsync/local.db; run once with --keep")
        return folder
    folder = Path(tempfile.mkdtemp(prefix="hqsync-bench-"))
    (folder / "configs").mkdir()
    database = folder / ".hqsync" / "local.db"
    open_store(f"sqlite:///{database}").close()
    started = time.perf_counter()
    _fill(database, arguments.records)
    print(
        f"filled {arguments.records:,} records in {time.perf_counter() - started:.1f} s"
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temporary folder."
    )
    parser.add_argument(
        "--folder", help="Reuse a folder kept by an earlier --keep run."
    )
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of runs.")
    arguments = parser.parse_args()
    sqlite3_cli = shutil.which("sqlite3")
    if sqlite3_cli is None:
        raise SystemExit("sqlite3 not found; install it: apt-get install sqlite3")
    if not Path(GNU_TIME).is_file():
        raise SystemExit(
            f"{GNU_TIME} not found; install GNU time: apt-get install time"
        )
    folder = _prepare(arguments)
    database = folder / ".hqsync" / "local.db"

    commands: dict[str, list[str]] = {
        "sqlite3 -csv": [
            sqlite3_cli, "-csv", "-header", str(database), "SELECT * FROM audit_records"
        ],
        "hqsync audit export": [
            sys.executable, "-c", "from hqsync.cli import main; main()",
            "audit", "export", "--format", "csv", "--out", "-",
        ],
        "export_records only": [sys.executable, "-c", LIBRARY_EXPORT],
        "python csv.writer dump": [sys.executable, "-c", PYTHON_DUMP],
    }  # fmt: skip
    # Each round runs every command in turn, so all run under similar machine
    # load. The report keeps each command's fastest time and highest peak RSS.
    runs: dict[str, Run] = {}
    for _ in range(arguments.repeat):
        for name, command in commands.items():
            run = _run(command, folder / f"{name.split()[0]}.csv", folder)
            best = runs.get(name, run)
            runs[name] = Run(
                min(best.seconds, run.seconds),
                max(best.peak_rss_mb, run.peak_rss_mb),
                run.output_bytes,
            )

    version = subprocess.run([sqlite3_cli, "--version"], capture_output=True, text=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, sqlite3 {version.stdout.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f}, best of {arguments.repeat}"
    )
    baseline = runs["sqlite3 -csv"]
    print(f"{'':24}{'seconds':>9}{'x sqlite3':>11}{'peak RSS MB':>13}{'output MB':>11}")
    for name, run in runs.items():
        print(
            f"{name:24}{run.seconds:>9.2f}{run.seconds / baseline.seconds:>11.2f}"
            f"{run.peak_rss_mb:>13.1f}{run.output_bytes / 1e6:>11.1f}"
        )
    print("targets for hqsync audit export: <= 2x sqlite3, <= 100 MB peak RSS")
    if arguments.keep or arguments.folder:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()

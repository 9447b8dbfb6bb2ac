"""Benchmark load_config against a plain PyYAML CSafeLoader load of the same files.

For each size, writes 1,000 header-auth services, one site and N rules as one
YAML stream (20,000 rules is about 6 MB), then times, in this process:

1. baseline: ``yaml.load_all`` with ``CSafeLoader`` (parse only, no checks);
2. ``hqsync.config.load_config``: parse with locations, render, validate,
   cross-document checks, secrets.

The ratio of the two is what to compare between machines. Not part of the tests.

    .venv/bin/python bench/config_load.py --rules 1000 20000
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hqsync.config import load_config

SERVICES = 1000


def write_config(root: Path, rules: int) -> Path:
    """Write the generated stream to ``root/all.yaml`` and return its path."""
    parts = [
        f"kind: ExternalService\nname: svc-{i}\n"
        f"url: https://svc-{i}.example.invalid/hook\n"
        f"status: {'active' if i < 5 else 'inactive'}\n"
        "auth:\n  type: header\n  key: {from_env: BENCH_KEY}\n"
        for i in range(SERVICES)
    ]
    parts.append(
        "kind: Site\nname: bench\nisheets:\n  - name: matters\n    columns:\n"
        "      - {name: matter_id}\n"
        "      - {name: status, type: choice, choices: [Open, Closed]}\n"
        "folders: [/Contracts]\n"
    )
    parts.extend(
        f"kind: Rule\nname: rule-{i}\nsite: bench\n"
        f'description: "{{{{ vars.team }}}} rule {i}"\n'
        "trigger: {type: isheet_item_updated, isheet: matters}\n"
        "conditions:\n  - {column: status, operator: changed_to, value: Closed}\n"
        "actions:\n  - type: send_to_external_service\n"
        f"    service: svc-{i % SERVICES}\n    columns: [matter_id, status]\n"
        for i in range(rules)
    )
    path = root / "all.yaml"
    path.write_text("---\n".join(parts), encoding="utf-8")
    return path


def measure(rules: int, repeat: int) -> tuple[float, float, int]:
    """Return the best baseline and load_config times in seconds, and the file size."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        path = write_config(root, rules)
        baseline = load = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            text = path.read_text(encoding="utf-8")
            list(yaml.load_all(text, Loader=yaml.CSafeLoader))
            baseline = min(baseline, time.perf_counter() - started)

            started = time.perf_counter()
            config = load_config(
                root, cli_vars={"team": "t"}, environ={"BENCH_KEY": "k"}
            )
            load = min(load, time.perf_counter() - started)
            assert len(config.rules) == rules
        return baseline, load, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, nargs="+", default=[1000, 10000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    python = platform.python_version()
    print(f"Python {python} on {platform.machine()}, best of {arguments.repeat}")
    print("rules  MB    CSafeLoader  load_config  ratio")
    for rules in arguments.rules:
        baseline, load, size = measure(rules, arguments.repeat)
        print(
            f"{rules:>5}  {size / 1e6:4.1f}  {baseline:9.2f} s  {load:9.2f} s  "
            f"{load / baseline:5.2f}"
        )


if __name__ == "__main__":
    main()

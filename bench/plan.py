"""Benchmark ``hqsync plan`` against a floor of YAML parsing plus a store read.

For each size (1k, 10k and 20k rules by default, always with 1,000 header-auth
services and 100 sites), the script writes a configuration, applies it once to
a fresh SQLite store, then times in the same run:

- the floor: parsing every YAML file with PyYAML's ``CSafeLoader`` and reading
  every live resource from the store (what no plan can avoid);
- the plan: ``load_config`` (parse, render, validate) plus ``make_plan``
  (normalise, diff, safety checks) against the store, as ``hqsync plan`` does
  before rendering.

Each measurement runs in a child process (best of ``--repeat``); peak RSS
comes from ``wait4``. Not part of the tests.

    .venv/bin/python bench/plan.py --rules 1000 10000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICES = 1000
SITES = 100
KEY_VARIABLE = "BENCH_SERVICE_KEY"


def write_config(root: Path, rules: int) -> None:
    """Write hqsync.yaml, one services file, and one file per site with its rules."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hqsync.yaml").write_text(
        "default_instance: bench\n"
        "instances:\n"
        "  bench:\n"
        f"    store: sqlite:///{root.parent}/store.db\n"
        f"    limits: {{max_active_services: {SERVICES}}}\n"
    )
    services = [
        f"kind: ExternalService\nname: service-{index:04d}\n"
        f"url: https://service-{index:04d}.example.invalid/hooks/highq\n"
        f"auth: {{type: header, key: {{from_env: {KEY_VARIABLE}}}}}\n"
        for index in range(SERVICES)
    ]
    (root / "services.yaml").write_text("---\n".join(services))
    per_site = rules // SITES
    for site in range(SITES):
        documents = [_site(site)]
        for number in range(per_site):
            documents.append(_rule(site, number))
        (root / f"site-{site:03d}.yaml").write_text("---\n".join(documents))


def _site(site: int) -> str:
    return (
        f"kind: Site\nname: site-{site:03d}\ntitle: Site {site}\n"
        "isheets:\n"
        "  - name: matters\n"
        "    columns:\n"
        "      - {name: matter_id, title: Matter ID}\n"
        "      - {name: status, type: choice, choices: [Open, Closed, On hold]}\n"
        "      - {name: client}\n"
        "      - {name: value, type: number}\n"
        "folders: [/Contracts, /Pleadings]\n"
    )


def _rule(site: int, number: int) -> str:
    service = (site * 97 + number) % SERVICES
    return (
        f"kind: Rule\nname: rule-{number:05d}\nsite: site-{site:03d}\n"
        "trigger: {type: isheet_item_updated, isheet: matters}\n"
        "conditions:\n"
        "  - {column: status, operator: changed_to, value: Closed}\n"
        f'  - {{column: client, operator: equals, value: "{number:05d}"}}\n'
        "actions:\n"
        f"  - {{type: send_to_external_service, service: service-{service:04d}, "
        "columns: [matter_id, status]}\n"
        "  - {type: internal, name: send_alert, params: {to: [team]}}\n"
    )


def child_floor(root: Path) -> None:
    """Parse every YAML file with CSafeLoader and read the store."""
    import yaml

    from hqsync.store import open_store

    started = time.perf_counter()
    for path in sorted(root.glob("*.yaml")):
        with path.open("rb") as handle:
            list(yaml.load_all(handle, Loader=yaml.CSafeLoader))
    with open_store(f"sqlite:///{root.parent}/store.db") as store:
        store.read_resources()
    print(time.perf_counter() - started)


def child_plan(root: Path) -> None:
    """Load the configuration and make the plan, as ``hqsync plan`` does."""
    from hqsync.config import load_config
    from hqsync.plan import make_plan
    from hqsync.store import open_store

    started = time.perf_counter()
    config = load_config(root)
    loaded = time.perf_counter()
    with open_store(config.store_url) as store:
        plan = make_plan(config, store, instance_name=config.instance_name)
    finished = time.perf_counter()
    print(f"{finished - started} {loaded - started}")
    if plan.has_changes:
        raise SystemExit(f"expected an empty plan, got {plan.summary()}")


def child_apply(root: Path) -> None:
    """Apply the configuration once."""
    from hqsync.config import load_config
    from hqsync.plan import apply_plan, make_plan
    from hqsync.store import open_store

    config = load_config(root)
    with open_store(config.store_url) as store:
        plan = make_plan(config, store, instance_name=config.instance_name)
        apply_plan(store, plan, config.instance)
    print(0.0)


CHILDREN = {"floor": child_floor, "plan": child_plan, "apply": child_apply}


def measure(step: str, root: Path) -> tuple[float, float, float, float]:
    """Run one step in a child process.

    Return the seconds of work after imports (printed by the child), the wall
    seconds of the whole process, its peak RSS in MiB, and for the plan step
    the seconds of ``load_config`` within the work.
    """
    environ = {**os.environ, KEY_VARIABLE: "bench-key-not-a-secret"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", step, str(root)],
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{step} failed for {root}")
    # The plan child also prints its load_config share as a second number.
    numbers = [float(part) for part in output.strip().splitlines()[-1].split()]
    return numbers[0], wall, usage.ru_maxrss / 1024, numbers[-1]


def run(sizes: list[int], repeat: int) -> list[dict[str, float]]:
    """Measure every size; return one result row per size."""
    rows = []
    for rules in sizes:
        with tempfile.TemporaryDirectory(prefix="hqsync-bench-plan-") as folder:
            root = Path(folder) / "configs"
            write_config(root, rules)
            _, apply_wall, apply_rss, _ = measure("apply", root)
            floors = [measure("floor", root) for _ in range(repeat)]
            plans = [measure("plan", root) for _ in range(repeat)]
        floor = min(floors)
        plan = min(plans)
        row = {
            "rules": rules,
            "floor_s": round(floor[0], 3),
            "plan_s": round(plan[0], 3),
            "plan_load_config_s": round(plan[3], 3),
            "ratio": round(plan[0] / floor[0], 2),
            "floor_wall_s": round(floor[1], 3),
            "plan_wall_s": round(plan[1], 3),
            "wall_ratio": round(plan[1] / floor[1], 2),
            "apply_wall_s": round(apply_wall, 3),
            "floor_rss_mb": round(max(run[2] for run in floors), 1),
            "plan_rss_mb": round(max(run[2] for run in plans), 1),
            "apply_rss_mb": round(apply_rss, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    """Parse arguments and run the benchmark (or one child step)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, nargs="+", default=[1000, 10000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--child", nargs=2, metavar=("STEP", "ROOT"), help=argparse.SUPPRESS
    )
    arguments = parser.parse_args()
    if arguments.child:
        step, root = arguments.child
        CHILDREN[step](Path(root))
        return
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    print(f"# {machine}, Python {platform.python_version()}")
    rows = run(arguments.rules, arguments.repeat)
    by_rules = {int(row["rules"]): row for row in rows}
    if 10000 in by_rules and 20000 in by_rules:
        scaling = by_rules[20000]["plan_s"] / by_rules[10000]["plan_s"]
        print(f"# plan time 20k/10k: {scaling:.2f}")


if __name__ == "__main__":
    main()

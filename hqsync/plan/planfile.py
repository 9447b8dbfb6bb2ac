"""Save a plan to a file and check a saved plan against the current state.

A saved plan is the JSON plan (no secrets, no unkeyed hashes of secrets) plus
the store serial and a keyed checksum of the rendered configuration. Apply
re-plans from the current configuration and store and applies that only if
serial, checksum and the list of changes all match the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hqsync.atomicfile import write_output
from hqsync.errors import PlanError, StalePlan
from hqsync.plan.model import Plan
from hqsync.plan.render import JSON_FORMAT_VERSION, plan_to_json

PLAN_FILE_KIND = "hqsync-plan"


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan atomically, readable by its owner only."""
    document = {"kind": PLAN_FILE_KIND, **plan_to_json(plan)}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_output(path, text, private=True)


def load_plan(path: Path) -> dict[str, Any]:
    """Read a saved plan file; raise PlanError if it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path} is not a saved hqsync plan: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != PLAN_FILE_KIND:
        raise PlanError(
            f"{path} is not a saved hqsync plan (no kind: {PLAN_FILE_KIND})"
        )
    if document.get("format_version") != JSON_FORMAT_VERSION:
        raise PlanError(
            f"{path} has plan format_version {document.get('format_version')!r}; "
            f"this hqsync reads {JSON_FORMAT_VERSION}"
        )
    return document


def check_saved_plan(saved: dict[str, Any], current: Plan, path: Path) -> None:
    """Raise StalePlan unless ``current`` is the plan saved in ``saved``."""
    if saved.get("instance") != current.instance:
        raise StalePlan(
            f"plan file {path} was made for instance {saved.get('instance')!r}, "
            f"not {current.instance!r}"
        )
    if saved.get("serial") != current.serial:
        raise StalePlan(
            f"plan file {path} is stale: the store changed since it was made "
            f"(serial {saved.get('serial')}, now {current.serial}); make a new plan"
        )
    if saved.get("config_checksum") != current.config_checksum:
        raise StalePlan(
            f"plan file {path} is stale: the configuration (or a secret) changed "
            "since it was made; make a new plan"
        )
    if saved.get("changes") != plan_to_json(current)["changes"]:
        raise StalePlan(
            f"plan file {path} does not match the plan made now; make a new plan"
        )

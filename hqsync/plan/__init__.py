"""Plan and apply: diff desired against live, render, save, apply, export.

:func:`make_plan` builds a :class:`Plan` from a loaded configuration and an
open store; :func:`apply_plan` applies it in one transaction under the
instance lock. ``specs`` defines the normalised form both sides compare in.
"""

from __future__ import annotations

from hqsync.plan.apply import ApplyResult, apply_plan, lock_holder
from hqsync.plan.export import export_live
from hqsync.plan.model import Change, FieldChange, Plan
from hqsync.plan.planfile import check_saved_plan, load_plan, save_plan
from hqsync.plan.planner import make_plan
from hqsync.plan.render import render_json, render_markdown, render_text

__all__ = [
    "ApplyResult",
    "Change",
    "FieldChange",
    "Plan",
    "apply_plan",
    "check_saved_plan",
    "export_live",
    "load_plan",
    "lock_holder",
    "make_plan",
    "render_json",
    "render_markdown",
    "render_text",
    "save_plan",
]

"""``hqsync export`` writes text with Jinja2 markers so that it loads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import RULES, SERVICES, ConfigDir
from .test_cli import ENVIRON, run

LIVE_TITLE = "{{ a }} {% b %} {# c #}"
LIVE_DESCRIPTION = "{{ y }} endraw {%"
PLACEHOLDERS = {
    "HQSYNC_INTAKE_KEY": ENVIRON["INTAKE_KEY"],
    "HQSYNC_CRM_URL": ENVIRON["CRM_URL"],
    "HQSYNC_CRM_CLIENT_SECRET": ENVIRON["CRM_SECRET"],
}

SITE_WITH_MARKERS = """
kind: Site
name: litigation
title: "{% raw %}{{ a }} {% b %} {# c #}{% endraw %}"
isheets:
  - name: matters
    columns:
      - {name: matter_id, title: "{{ '{{' }} id"}
      - {name: status, type: choice, choices: [Open, Closed]}
      - {name: code}
folders: [/Contracts, /Pleadings]
"""


@pytest.fixture
def exported(config_dir: ConfigDir, tmp_path: Path) -> ConfigDir:
    """Apply a site whose text contains Jinja2 markers, then export it."""
    rules = RULES.replace(
        "name: closed-matter\n",
        "name: closed-matter\ndescription: \"{{ '{{ y }} endraw {%' }}\"\n",
    )
    config_dir.write("services.yaml", SERVICES)
    config_dir.write("site.yaml", SITE_WITH_MARKERS)
    config_dir.write("rules.yaml", rules)
    applied = run(config_dir, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    out = tmp_path / "exported"
    result = run(config_dir, "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    (out / "hqsync.yaml").write_text((config_dir.root / "hqsync.yaml").read_text())
    return ConfigDir(out)


def test_export_markers_load_back(exported: ConfigDir) -> None:
    config = exported.load({**ENVIRON, **PLACEHOLDERS})

    site = config.sites["litigation"]
    assert site.title == LIVE_TITLE
    assert site.isheets[0].columns[0].title == "{{ id"
    assert config.rules[("litigation", "closed-matter")].description == (
        LIVE_DESCRIPTION
    )


def test_export_markers_plan_is_empty(exported: ConfigDir) -> None:
    plan = run(exported, "plan", "--detailed-exitcode", environ=PLACEHOLDERS)

    assert plan.returncode == 0, plan.stdout + plan.stderr

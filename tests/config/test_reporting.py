"""Every problem is reported, and each one only once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hqsync.config import ConfigError, load_config

from .helpers import SERVICE, SITE, TEST_ENVIRON, write_tree

RULE_WITH_NUMBERS = """\
kind: Rule
name: closed
site: litigation
trigger: {type: isheet_item_updated, isheet: matters}
conditions:
  - {column: matter_id, operator: equals, value: 010}
  - {column: matter_id, operator: in, value: [0x1F, no]}
actions:
  - {type: internal, name: send_alert}
"""

TEMPLATE_WITH_NUMBERS = """\
kind: SiteTemplate
name: matter-site
isheets:
  - name: tasks
    columns: [{name: task_id}]
rules:
  - name: first
    trigger: {type: isheet_item_added, isheet: tasks}
    conditions:
      - {column: task_id, operator: equals, value: 1.10}
    actions:
      - {type: internal, name: send_alert}
  - name: second
    enabled: "yes"
    trigger: {type: isheet_item_added, isheet: tasks}
    actions:
      - {type: internal, name: send_alert}
"""


def _problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_dir, environ=TEST_ENVIRON)
    return [str(problem) for problem in excinfo.value.problems]


def test_numbers_reported_beside_type_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"site.yaml": SITE, "rule.yaml": RULE_WITH_NUMBERS})

    problems = _problems(tmp_path)

    assert (
        f"{tmp_path}/rule.yaml:6:50: `010` is read as the number 8; quote it: '010'"
        in problems
    )
    assert (
        f"{tmp_path}/rule.yaml:7:47: `0x1F` is read as the number 31; quote it: '0x1F'"
        in problems
    )
    assert len(problems) == 3


def test_numbers_in_invalid_template_reported(tmp_path: Path) -> None:
    write_tree(tmp_path, {"template.yaml": TEMPLATE_WITH_NUMBERS})

    problems = _problems(tmp_path)

    assert (
        f"{tmp_path}/template.yaml:10:52: `1.10` is read as the number 1.1; "
        "quote it: '1.10'"
    ) in problems
    assert len(problems) == 2


def test_failed_template_reported_once(tmp_path: Path) -> None:
    service = SERVICE.replace("name: intake", 'name: "{{ 1/0 }}"')
    write_tree(tmp_path, {"s.yaml": service})

    assert _problems(tmp_path) == [
        f"{tmp_path}/s.yaml:2:7: template error in '{{{{ 1/0 }}}}': division by zero"
    ]

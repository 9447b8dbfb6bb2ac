"""After an import, an event on the new site reaches B's service with B's ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hqsync.store import open_store

from .helpers import B_INTAKE_KEY, Instances, Receiver

MAP_ARGS = ("--map-service", "crm=crm-b", "--map-service", "intake=intake-b")


def _ids(instances: Instances, name: str) -> dict[tuple[str, str, str], int]:
    return {(r.kind, r.scope, r.name): r.id for r in instances.live(name)}


def _instance_id(instances: Instances, name: str) -> int:
    with open_store(f"sqlite:///{instances.root}/{name}.db") as store:
        return store.instance_id()


def _deliver_new_case(instances: Instances) -> None:
    event = {
        "id": "evt-new-case-1",
        "type": "isheet_item_added",
        "site": "matters",
        "isheet": "cases",
        "item_id": 1042,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "values": {"case_id": "C-1", "value": 10},
    }
    events = instances.root / "events.jsonl"
    events.write_text(json.dumps(event) + "\n", encoding="utf-8")
    pushed = instances.run(instances.b, "events", "push", str(events))
    ran = instances.run(instances.b, "run", "--until-idle")
    assert pushed.returncode == 0, pushed.output
    assert "deliveries created 1" in pushed.stdout
    assert ran.returncode == 0, ran.output


def test_delivery_after_import_carries_b_ids(
    instances: Instances, template_file: Path, receiver: Receiver
) -> None:
    imported = instances.run(
        instances.b,
        "template",
        "import",
        str(template_file),
        "--site",
        "matters",
        *MAP_ARGS,
        "--apply",
        "--auto-approve",
    )
    assert imported.returncode == 0, imported.output
    _deliver_new_case(instances)

    a_ids, b_ids = _ids(instances, "a"), _ids(instances, "b")
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    body = request.json()
    assert request.path == "/intake-b?sig=b-sig"
    assert request.headers["highq-auth-key"] == B_INTAKE_KEY
    assert body["workflowVersion"] == "V1"
    assert body["instanceId"] == _instance_id(instances, "b")
    assert body["instanceId"] != _instance_id(instances, "a")
    assert body["siteId"] == b_ids[("site", "", "matters")]
    assert body["siteId"] != a_ids[("site", "", "matters")]
    assert body["isheetID"] == b_ids[("isheet", "matters", "cases")]
    assert body["ruleId"] == b_ids[("rule", "matters", "new-case-to-intake")]
    assert body["ruleId"] != a_ids[("rule", "matters", "new-case-to-intake")]
    assert sorted(body["columnIds"]) == sorted(
        [
            b_ids[("column", "matters/cases", "case_id")],
            b_ids[("column", "matters/cases", "value")],
        ]
    )
    assert body["contentID"] == 1042

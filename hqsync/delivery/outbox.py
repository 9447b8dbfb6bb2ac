"""Store events and their deliveries in one transaction (the outbox pattern).

Each event is inserted once, and a seen ``event_id`` is skipped. In the same
transaction every rule action the event fires becomes an audit record. A
``send_to_external_service`` action becomes a pending delivery with its V1
body. An internal action becomes a finished ``success`` record, because
hqsync keeps internal actions as configuration only. No event is stored
without its deliveries.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hqsync.config.models import Instance
from hqsync.delivery import payload
from hqsync.delivery.events import FileEvent, ISheetEvent
from hqsync.delivery.matching import Catalog, matching_rules
from hqsync.delivery.sender import auth_header_names, base_headers
from hqsync.store import LiveResource, Store, name_key
from hqsync.store.schema import audit_records, events

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
"""Events stored per transaction, at most."""


# Every row of one insert needs the same keys; these are the optional ones.
_EMPTY_RECORD: dict[str, Any] = dict.fromkeys(
    (
        "service_id",
        "service_name",
        "delivery_id",
        "api_url",
        "request_headers",
        "request_body",
        "next_attempt_at",
        "window_closes_at",
        "finished_at",
    )
) | {"attempt_count": 0}


@dataclass
class PushReport:
    """Counts of one ``events push``.

    ``unknown_sites`` counts stored events by a site name the instance does not
    have, and ``unknown_isheets`` by ``site/isheet`` for an iSheet it does not
    have. Such events are stored but can fire no rule.
    """

    accepted: int = 0
    duplicates: int = 0
    deliveries: int = 0
    internal_actions: int = 0
    unknown_sites: Counter[str] = field(default_factory=Counter)
    unknown_isheets: Counter[str] = field(default_factory=Counter)

    def add(self, other: PushReport) -> None:
        """Add the counts of ``other``, a report of a later batch, to this one."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.deliveries += other.deliveries
        self.internal_actions += other.internal_actions
        self.unknown_sites.update(other.unknown_sites)
        self.unknown_isheets.update(other.unknown_isheets)


def push_events(
    store: Store,
    instance: Instance,
    parsed: Sequence[ISheetEvent | FileEvent],
    clock: Callable[[], datetime],
) -> PushReport:
    """Store events not seen before, with the audit records of the rules they fire."""
    report = PushReport()
    instance_id = store.instance_id()
    for start in range(0, len(parsed), BATCH_SIZE):
        with store.begin() as connection:
            # Rules are read in the transaction that stores the events, so an
            # apply cannot land between matching and storing.
            catalog = Catalog.from_resources(store.read_resources(connection))
            for event in parsed[start : start + BATCH_SIZE]:
                context = _Context(catalog, instance, instance_id, clock())
                _store_event(connection, store.dialect, context, event, report)
    return report


@dataclass
class _Context:
    catalog: Catalog
    instance: Instance
    instance_id: int
    now: datetime


def _store_event(
    connection: sa.Connection,
    dialect: str,
    context: _Context,
    event: ISheetEvent | FileEvent,
    report: PushReport,
) -> None:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(events)
        .values(
            event_id=event.id,
            type=event.type,
            site=event.site,
            body=event.model_dump(mode="json", exclude_none=True),
            occurred_at=event.occurred_at,
            received_at=context.now,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(events.c.id)
    )
    event_pk = connection.execute(statement).scalar_one_or_none()
    if event_pk is None:
        report.duplicates += 1
        return
    report.accepted += 1
    _count_unknown(context.catalog, event, report)

    rows = []
    for rule in matching_rules(context.catalog, event):
        rows += _records_for_rule(context, event, event_pk, rule, report)
    if rows:
        connection.execute(sa.insert(audit_records), rows)


def _count_unknown(
    catalog: Catalog, event: ISheetEvent | FileEvent, report: PushReport
) -> None:
    site_key = name_key(event.site)
    if site_key not in catalog.sites:
        report.unknown_sites[event.site] += 1
        return
    if not isinstance(event, ISheetEvent):
        return
    if (site_key, name_key(event.isheet)) not in catalog.isheets:
        report.unknown_isheets[f"{event.site}/{event.isheet}"] += 1


def _records_for_rule(
    context: _Context,
    event: ISheetEvent | FileEvent,
    event_pk: int,
    rule: LiveResource,
    report: PushReport,
) -> list[dict[str, Any]]:
    site = context.catalog.sites[name_key(rule.scope)]
    common = {
        **_EMPTY_RECORD,
        "event_pk": event_pk,
        "rule_id": rule.id,
        "rule_name": rule.name,
        "site_name": site.name,
        "trigger_object": _trigger_object(event),
        "created_at": context.now,
    }
    rows = []
    for index, action in enumerate(rule.spec.get("actions") or []):
        if action.get("type") == "send_to_external_service":
            row = _delivery_row(context, event, rule, site, action)
            if row is None:
                continue
            report.deliveries += 1
        else:
            report.internal_actions += 1
            row = {"action_type": "internal", "status": "success"}
            row["finished_at"] = context.now
        rows.append({**common, **row, "action_index": index, "action_detail": action})
    return rows


def _delivery_row(
    context: _Context,
    event: ISheetEvent | FileEvent,
    rule: LiveResource,
    site: LiveResource,
    action: dict[str, Any],
) -> dict[str, Any] | None:
    service = context.catalog.services.get(name_key(str(action.get("service"))))
    if service is None or service.spec.get("status", "active") != "active":
        logger.info(
            "skipped action of rule %s/%s: service %s is missing or inactive",
            site.name,
            rule.name,
            action.get("service"),
        )
        return None

    delivery_id = str(uuid.uuid4())
    headers = base_headers(delivery_id)
    headers.update(auth_header_names(service.spec.get("auth", {}).get("type", "")))
    window = timedelta(seconds=context.instance.delivery.window_seconds)
    return {
        "action_type": "send_to_external_service",
        "service_id": service.id,
        "service_name": service.name,
        "delivery_id": delivery_id,
        "status": "pending",
        "api_url": service.spec.get("url"),
        "request_headers": headers,
        "request_body": build_body(context, event, rule, site, action),
        "attempt_count": 0,
        "next_attempt_at": context.now,
        "window_closes_at": event.occurred_at + window,
    }


def build_body(
    context: _Context,
    event: ISheetEvent | FileEvent,
    rule: LiveResource,
    site: LiveResource,
    action: dict[str, Any],
) -> dict[str, Any]:
    """Build the V1 body of one action with the instance's numeric ids."""
    common = payload.build_common_fields(
        instance_id=context.instance_id,
        instance_base_url=context.instance.base_url,
        timezone=context.instance.timezone,
        site_id=site.id,
        author=event.acting_user,
        event_type=event.type,
        content_id=event.content_id,
        rule_id=rule.id,
        executed_at=context.now,
    )
    site_key = name_key(site.name)
    if isinstance(event, ISheetEvent):
        isheet_key = name_key(event.isheet)
        isheet = context.catalog.isheets[(site_key, isheet_key)]
        column_ids = [
            context.catalog.columns[(site_key, isheet_key, name_key(column))].id
            for column in action.get("columns") or []
            if (site_key, isheet_key, name_key(column)) in context.catalog.columns
        ]
        return payload.build_isheet_body(
            common=common, isheet_id=isheet.id, column_ids=column_ids
        )
    folder = context.catalog.folders.get(
        (site_key, name_key(event.folder.rstrip("/") or "/"))
    )
    return payload.build_document_body(
        common=common,
        parent_folder_id=folder.id if folder is not None else None,
        file_name=event.name,
    )


def _trigger_object(event: ISheetEvent | FileEvent) -> dict[str, Any]:
    if isinstance(event, ISheetEvent):
        return {
            "kind": "isheet_item",
            "site": event.site,
            "isheet": event.isheet,
            "item_id": event.item_id,
            "event_id": event.id,
        }
    return {
        "kind": "file",
        "site": event.site,
        "folder": event.folder,
        "name": event.name,
        "file_id": event.file_id,
        "event_id": event.id,
    }

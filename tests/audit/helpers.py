"""Shared test data for the audit tests: fixed times, a canary and a record factory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hqsync.store import schema

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
CANARY = "canary-s3cr3t-7f3a9c"


@dataclass
class AuditFactory:
    """Insert events, audit records and attempts with sensible defaults."""

    engine: sa.Engine
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def event(self, *, site: str = "litigation", at: datetime = NOW) -> int:
        number = next(self.counter)
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    schema.events.insert()
                    .values(
                        event_id=f"evt-{number}",
                        type="isheet_item_updated",
                        site=site,
                        body={"id": f"evt-{number}"},
                        occurred_at=at,
                        received_at=at,
                    )
                    .returning(schema.events.c.id)
                ).scalar_one()
            )

    def record(
        self,
        *,
        status: str = "failed",
        rule: str = "closed-matter",
        site: str = "litigation",
        service: str | None = "salesforce",
        action: str = "send_to_external_service",
        created_at: datetime = NOW,
        event_pk: int | None = None,
        attempts: int = 0,
        **columns: Any,
    ) -> int:
        """Insert one record (and ``attempts`` attempts); return its id."""
        number = next(self.counter)
        if event_pk is None:
            event_pk = self.event(site=site, at=created_at)
        external = action == "send_to_external_service"
        values: dict[str, Any] = {
            "event_pk": event_pk,
            "rule_id": 7,
            "rule_name": rule,
            "site_name": site,
            "action_index": 0,
            "action_type": action,
            "action_detail": {"type": action, "service": service, "columns": [1, 2]},
            "trigger_object": {
                "kind": "isheet_item",
                "site": site,
                "isheet": "matters",
                "item_id": 1000 + number,
            },
            "service_id": 3 if service else None,
            "service_name": service,
            "delivery_id": f"delivery-{number}" if external else None,
            "status": status,
            "api_url": "https://sf.example.invalid/notify" if external else None,
            "request_headers": {"Content-Type": "application/json"}
            if external
            else None,
            "request_body": {"workflowVersion": "V1", "contentID": 1000 + number}
            if external
            else None,
            "attempt_count": attempts,
            "next_attempt_at": created_at if status == "pending" else None,
            "window_closes_at": created_at + timedelta(hours=1) if external else None,
            "error_message": "HTTP 500 from the service"
            if status == "failed"
            else None,
            "created_at": created_at,
            "finished_at": None
            if status == "pending"
            else created_at + timedelta(minutes=5),
        }
        values.update(columns)
        with self.engine.begin() as connection:
            record_id = int(
                connection.execute(
                    schema.audit_records.insert()
                    .values(values)
                    .returning(schema.audit_records.c.id)
                ).scalar_one()
            )
            for attempt in range(1, attempts + 1):
                connection.execute(
                    schema.attempts.insert().values(
                        record_id=record_id,
                        number=attempt,
                        started_at=created_at + timedelta(seconds=attempt),
                        duration_ms=12.5 * attempt,
                        outcome="retry" if attempt < attempts else "failed",
                        http_status=500,
                        error_class=None,
                        error_message=None,
                        response_headers={"Content-Type": "text/plain"},
                        response_body=f"boom {attempt}",
                        runner="runner-1",
                    )
                )
        return record_id

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(table)
                ).scalar_one()
            )

"""Read audit records: the list page, one record in full, and shared conversions.

A record's triggering object is stored as JSON with ``kind``, ``site``,
``isheet``, ``item_id`` and ``file_id`` (absent keys read as empty).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from hqsync.audit.filters import AuditFilter, as_utc, format_time
from hqsync.audit.redact import redact_headers, redact_text, redact_url
from hqsync.errors import AuditError
from hqsync.store.schema import attempts, audit_records, events

MAX_LIST_LIMIT = 10_000


@dataclass(frozen=True)
class Trigger:
    """The object whose change made a rule fire: an iSheet item or a file."""

    kind: str
    site: str
    isheet: str
    item_id: str
    file_id: str
    folder: str = ""
    name: str = ""  # a file's name

    @classmethod
    def from_json(cls, value: Any) -> Trigger:
        """Read a stored ``trigger_object``, tolerating missing keys."""
        data = _json_object(value)

        def text(key: str) -> str:
            item = data.get(key)
            return "" if item is None else str(item)

        return cls(
            kind=text("kind"),
            site=text("site"),
            isheet=text("isheet"),
            item_id=text("item_id"),
            file_id=text("file_id"),
            folder=text("folder"),
            name=text("name"),
        )

    def describe(self) -> str:
        """Return a short description, such as ``item 1042 in litigation/matters``."""
        if self.file_id:
            path = f"{self.folder.rstrip('/')}/{self.name}" if self.name else ""
            return f"file {self.file_id}{f' ({path})' if path else ''} in {self.site}"
        if self.item_id:
            return f"item {self.item_id} in {self.site}/{self.isheet}"
        return f"{self.kind or 'object'} in {self.site}"

    def reference(self, instance: str) -> str:
        """Return a link-style reference, ``hqsync://<instance>/sites/<site>/...``."""
        base = f"hqsync://{_segment(instance)}/sites/{_segment(self.site)}"
        if self.file_id:
            return f"{base}/files/{_segment(self.file_id)}"
        if self.item_id:
            return (
                f"{base}/isheets/{_segment(self.isheet)}/items/{_segment(self.item_id)}"
            )
        return base


@dataclass(frozen=True)
class RecordSummary:
    """One line of ``audit list``."""

    id: int
    created_at: datetime
    rule: str
    site: str
    action_type: str
    trigger: Trigger
    service: str | None
    status: str
    attempt_count: int


@dataclass(frozen=True)
class RecordPage:
    """A page of records, newest first, and the cursor to the next page."""

    records: list[RecordSummary]
    next_before: int | None  # pass as ``before`` for the next page; None at the end


@dataclass(frozen=True)
class RecordDetail:
    """One record with the detail a support request needs (``audit show``)."""

    record: dict[str, Any]  # see record_document for the keys
    attempts: list[dict[str, Any]]
    retried_as: list[int]  # ids of records that redeliver this one


def _segment(value: str) -> str:
    return quote(value, safe="")


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def record_document(row: RowMapping, instance: str) -> dict[str, Any]:
    """Convert a joined record row into the redacted dict that show and export use."""
    trigger = Trigger.from_json(row["trigger_object"])
    return {
        "id": row["id"],
        "created_at": _optional_time(row["created_at"]),
        "finished_at": _optional_time(row["finished_at"]),
        "status": row["status"],
        "rule_id": row["rule_id"],
        "rule": row["rule_name"],
        "site": row["site_name"],
        "action_index": row["action_index"],
        "action_type": row["action_type"],
        "action_detail": row["action_detail"],
        "event_id": row["event_id"],
        "trigger_object": _json_object(row["trigger_object"]),
        "trigger_ref": trigger.reference(instance),
        "service_id": row["service_id"],
        "service": row["service_name"],
        "delivery_id": row["delivery_id"],
        "api_url": redact_url(row["api_url"]),
        "request_headers": redact_headers(row["request_headers"]),
        "request_body": row["request_body"],
        "attempt_count": row["attempt_count"],
        "next_attempt_at": _optional_time(row["next_attempt_at"]),
        "window_closes_at": _optional_time(row["window_closes_at"]),
        "error_message": redact_text(row["error_message"]),
        "retry_of": row["retry_of"],
    }


def attempt_document(row: RowMapping) -> dict[str, Any]:
    """Convert an ``attempts`` row into a redacted dict."""
    return {
        "number": row["number"],
        "started_at": format_time(row["started_at"]),
        "duration_ms": row["duration_ms"],
        "outcome": row["outcome"],
        "http_status": row["http_status"],
        "error_class": row["error_class"],
        "error_message": redact_text(row["error_message"]),
        "location": redact_url(row["location"]),
        "response_headers": redact_headers(row["response_headers"]),
        "response_body": row["response_body"],
        "runner": row["runner"],
    }


def record_select() -> sa.Select[Any]:
    """Return a SELECT of every record column plus the event's own id."""
    return sa.select(audit_records, events.c.event_id).select_from(
        audit_records.outerjoin(events, audit_records.c.event_pk == events.c.id)
    )


def attempt_select() -> sa.Select[Any]:
    """Return a SELECT of every attempt column, in record and attempt order."""
    return sa.select(attempts).order_by(attempts.c.record_id, attempts.c.number)


MAX_RECORD_ID = 2**63 - 1
"""The largest record id: the stores keep ids as signed 64-bit integers."""


def is_record_id(value: int) -> bool:
    """Return whether ``value`` can be a record id, so a query can bind it."""
    return 1 <= value <= MAX_RECORD_ID


def list_records(
    engine: Engine,
    audit_filter: AuditFilter,
    *,
    limit: int = 50,
    page: int | None = None,
    before: int | None = None,
) -> RecordPage:
    """Return one page of records, newest first; ``before`` is a record id cursor."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise AuditError(f"invalid --limit {limit}: expected 1 to {MAX_LIST_LIMIT}")
    if page is not None and page < 1:
        raise AuditError(f"invalid --page {page}: pages start at 1")
    if page is not None and (page - 1) * limit > MAX_RECORD_ID:
        raise AuditError(f"invalid --page {page}: past the last possible record")
    if page is not None and before is not None:
        raise AuditError("--page and --before cannot be combined; use one of them")
    c = audit_records.c
    query = (
        sa.select(
            c.id,
            c.created_at,
            c.rule_name,
            c.site_name,
            c.action_type,
            c.trigger_object,
            c.service_name,
            c.status,
            c.attempt_count,
        )
        .where(*audit_filter.conditions())
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(limit + 1)
    )
    with engine.connect() as connection:
        if before is not None:
            cursor_time = _created_at(connection, before)
            query = query.where(
                sa.or_(
                    c.created_at < cursor_time,
                    sa.and_(c.created_at == cursor_time, c.id < before),
                )
            )
        if page is not None:
            query = query.offset((page - 1) * limit)
        rows = connection.execute(query).mappings().all()

    # One extra row shows whether another page follows.
    summaries = [_summary(row) for row in rows[:limit]]
    has_more = len(rows) > limit
    return RecordPage(summaries, summaries[-1].id if has_more and summaries else None)


def _created_at(connection: Connection, record_id: int) -> datetime:
    if not is_record_id(record_id):
        raise AuditError(f"audit record {record_id} not found (from --before)")
    value = connection.execute(
        sa.select(audit_records.c.created_at).where(audit_records.c.id == record_id)
    ).scalar_one_or_none()
    if value is None:
        raise AuditError(f"audit record {record_id} not found (from --before)")
    # Compare in the stored form: naive UTC on SQLite, aware on PostgreSQL.
    result: datetime = value
    return result


def _summary(row: RowMapping) -> RecordSummary:
    return RecordSummary(
        id=row["id"],
        created_at=as_utc(row["created_at"]),
        rule=row["rule_name"],
        site=row["site_name"],
        action_type=row["action_type"],
        trigger=Trigger.from_json(row["trigger_object"]),
        service=row["service_name"],
        status=row["status"],
        attempt_count=row["attempt_count"],
    )


def find_record(engine: Engine, reference: str, *, instance: str) -> RecordDetail:
    """Return the record that ``reference`` names: a record id or a delivery id."""
    value = reference.strip()
    if value.isascii() and value.isdigit():
        return get_record(engine, int(value), instance=instance)
    with engine.connect() as connection:
        record_id = connection.execute(
            sa.select(audit_records.c.id).where(audit_records.c.delivery_id == value)
        ).scalar_one_or_none()
    if record_id is None:
        raise AuditError(
            f"no audit record has delivery id {value}; give a record id (a number) "
            "or the delivery id of an external action"
        )
    return get_record(engine, record_id, instance=instance)


def get_record(engine: Engine, record_id: int, *, instance: str) -> RecordDetail:
    """Return one record with its attempts and redeliveries; AuditError if unknown."""
    if not is_record_id(record_id):
        raise AuditError(f"audit record {record_id} not found")
    with engine.connect() as connection:
        row = (
            connection.execute(record_select().where(audit_records.c.id == record_id))
            .mappings()
            .one_or_none()
        )
        if row is None:
            raise AuditError(f"audit record {record_id} not found")
        attempt_rows = connection.execute(
            attempt_select().where(attempts.c.record_id == record_id)
        ).mappings()
        attempt_list = [attempt_document(attempt) for attempt in attempt_rows]
        retried_as = list(
            connection.execute(
                sa.select(audit_records.c.id)
                .where(audit_records.c.retry_of == record_id)
                .order_by(audit_records.c.id)
            ).scalars()
        )
    return RecordDetail(record_document(row, instance), attempt_list, retried_as)

"""Stream audit records out as CSV, JSON Lines or JSON, in constant memory.

Records are read in keyset batches (``id > last id``), oldest first, so memory
stays flat however many records match. The CSV columns (``RECORD_COLUMNS`` in
``csv_records`` and ``ATTEMPT_COLUMNS`` here) are a stable contract. New
columns may be appended, but existing ones are never renamed, reordered or
removed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy.engine import Connection, Engine, RowMapping

from hqsync.atomicfile import open_output
from hqsync.audit.csv_records import RECORD_COLUMNS, iter_record_lines
from hqsync.audit.filters import AuditFilter, format_time
from hqsync.audit.records import (
    Trigger,
    attempt_document,
    attempt_select,
    record_document,
    record_select,
)
from hqsync.audit.redact import redact_text, redact_url
from hqsync.errors import AuditError
from hqsync.store.schema import attempts, audit_records

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "jsonl", "json")
DEFAULT_BATCH_SIZE = 2000

ATTEMPT_COLUMNS = (
    "record_id",
    "created_at",
    "status",
    "rule",
    "site",
    "action_type",
    "trigger_ref",
    "service",
    "delivery_id",
    "api_url",
    "retry_of",
    "attempt_number",
    "attempt_started_at",
    "attempt_duration_ms",
    "attempt_outcome",
    "attempt_http_status",
    "attempt_error_class",
    "attempt_error_message",
    "attempt_location",
    "attempt_response_body",
)
"""CSV columns with ``--attempts``: one row per attempt, record columns repeated."""


def _text(value: Any) -> Any:
    # csv writes None as an empty field already; times become UTC ISO 8601.
    if isinstance(value, datetime):
        return format_time(value)
    return value


def _attempt_csv_row(
    row: RowMapping, attempt: RowMapping | None, instance: str
) -> list[Any]:
    record_part = [
        row["id"],
        _text(row["created_at"]),
        row["status"],
        row["rule_name"],
        row["site_name"],
        row["action_type"],
        Trigger.from_json(row["trigger_object"]).reference(instance),
        row["service_name"],
        row["delivery_id"],
        redact_url(row["api_url"]),
        row["retry_of"],
    ]
    if attempt is None:
        return record_part + [None] * 9
    return [
        *record_part,
        attempt["number"],
        _text(attempt["started_at"]),
        attempt["duration_ms"],
        attempt["outcome"],
        attempt["http_status"],
        attempt["error_class"],
        redact_text(attempt["error_message"]),
        redact_url(attempt["location"]),
        attempt["response_body"],
    ]


def iter_record_batches(
    connection: Connection, audit_filter: AuditFilter, batch_size: int
) -> Iterator[Sequence[RowMapping]]:
    """Yield the matching record rows, oldest first, ``batch_size`` at a time."""
    conditions = audit_filter.conditions()
    last_id = 0
    while True:
        query = (
            record_select()
            .where(audit_records.c.id > last_id, *conditions)
            .order_by(audit_records.c.id)
            .limit(batch_size)
        )
        batch = connection.execute(query).mappings().all()
        # End the read transaction between batches, so a long export does not
        # hold back PostgreSQL's vacuum.
        connection.commit()
        if not batch:
            return
        yield batch
        last_id = batch[-1]["id"]
        if len(batch) < batch_size:
            return


def _with_attempts(
    connection: Connection, batch: Sequence[RowMapping]
) -> Iterator[tuple[RowMapping, list[RowMapping]]]:
    # Merge the batch with its attempts, both in record id order. Attempts are
    # streamed, so only one record's response bodies are in memory at a time.
    query = attempt_select().where(
        attempts.c.record_id.in_([row["id"] for row in batch])
    )
    result = connection.execution_options(yield_per=500).execute(query).mappings()
    pending = next(result, None)
    for row in batch:
        own: list[RowMapping] = []
        while pending is not None and pending["record_id"] == row["id"]:
            own.append(pending)
            pending = next(result, None)
        yield row, own
    result.close()


def export_records(
    engine: Engine,
    stream: TextIO,
    *,
    export_format: str,
    audit_filter: AuditFilter,
    instance: str,
    per_attempt: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Write the matching records to ``stream``; return the number of records."""
    if export_format not in EXPORT_FORMATS:
        raise AuditError(
            f"invalid export format {export_format!r}: expected one of "
            f"{', '.join(EXPORT_FORMATS)}"
        )
    if per_attempt and export_format != "csv":
        raise AuditError(
            "--attempts applies to CSV only; JSON and JSON Lines records "
            "already carry their attempts"
        )
    with engine.connect() as connection:
        if export_format == "csv" and not per_attempt:
            return _write_record_csv(
                connection, stream, audit_filter, instance, batch_size
            )
        batches = iter_record_batches(connection, audit_filter, batch_size)
        if export_format == "csv":
            return _write_attempt_csv(connection, stream, batches, instance)
        return _write_json(connection, stream, batches, instance, export_format)


def _write_record_csv(
    connection: Connection,
    stream: TextIO,
    audit_filter: AuditFilter,
    instance: str,
    batch_size: int,
) -> int:
    csv.writer(stream).writerow(RECORD_COLUMNS)
    count = 0
    for text, rows in iter_record_lines(connection, audit_filter, instance, batch_size):
        stream.write(text)
        count += rows
        logger.debug("export: %s records written", count)
    return count


def _write_attempt_csv(
    connection: Connection,
    stream: TextIO,
    batches: Iterable[Sequence[RowMapping]],
    instance: str,
) -> int:
    writer = csv.writer(stream)
    writer.writerow(ATTEMPT_COLUMNS)
    count = 0
    for batch in batches:
        for row, own in _with_attempts(connection, batch):
            if not own:
                writer.writerow(_attempt_csv_row(row, None, instance))
            for attempt in own:
                writer.writerow(_attempt_csv_row(row, attempt, instance))
        count += len(batch)
        logger.debug("export: %s records written", count)
    return count


def _write_json(
    connection: Connection,
    stream: TextIO,
    batches: Iterable[Sequence[RowMapping]],
    instance: str,
    export_format: str,
) -> int:
    # JSON is written as one array item per record so it streams like JSONL.
    as_array = export_format == "json"
    if as_array:
        stream.write("[")
    count = 0
    for batch in batches:
        for row, own in _with_attempts(connection, batch):
            document = record_document(row, instance)
            document["attempts"] = [attempt_document(attempt) for attempt in own]
            text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
            if as_array:
                stream.write(("\n" if count == 0 else ",\n") + text)
            else:
                stream.write(text + "\n")
            count += 1
    if as_array:
        stream.write("\n]\n" if count else "]\n")
    return count


def export_to_file(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    export_format: str,
    audit_filter: AuditFilter,
    instance: str,
    per_attempt: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Export to ``path`` (see :func:`hqsync.atomicfile.open_output`).

    Return the number of records. Raise OutputError if ``path`` cannot be written.
    """
    # Records carry event values and request bodies, so the file is private.
    with open_output(path, private=True, newline="") as stream:
        return export_records(
            engine,
            stream,
            export_format=export_format,
            audit_filter=audit_filter,
            instance=instance,
            per_attempt=per_attempt,
            batch_size=batch_size,
        )

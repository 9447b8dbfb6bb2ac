"""The audit history: list, show, export, retry and prune audit records.

Every function takes a SQLAlchemy engine on the instance store (``Store.engine``)
and raises :class:`hqsync.errors.AuditError` for a bad request.
"""

from __future__ import annotations

from hqsync.audit.csv_records import RECORD_COLUMNS
from hqsync.audit.export import (
    ATTEMPT_COLUMNS,
    EXPORT_FORMATS,
    export_records,
    export_to_file,
)
from hqsync.audit.filters import AuditFilter, format_time, parse_duration, parse_time
from hqsync.audit.prune import PruneCount, count_prunable, prune
from hqsync.audit.records import (
    RecordDetail,
    RecordPage,
    RecordSummary,
    Trigger,
    find_record,
    get_record,
    list_records,
)
from hqsync.audit.retry import Redelivery, retry_failed, retry_records

__all__ = [
    "ATTEMPT_COLUMNS",
    "EXPORT_FORMATS",
    "RECORD_COLUMNS",
    "AuditFilter",
    "PruneCount",
    "RecordDetail",
    "RecordPage",
    "RecordSummary",
    "Redelivery",
    "Trigger",
    "count_prunable",
    "export_records",
    "export_to_file",
    "find_record",
    "format_time",
    "get_record",
    "list_records",
    "parse_duration",
    "parse_time",
    "prune",
    "retry_failed",
    "retry_records",
]

"""``list_records`` paging and ``get_record`` detail on a real SQLite store."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hqsync.audit import AuditFilter, get_record, list_records
from hqsync.errors import AuditError
from hqsync.store import schema

from .helpers import CANARY, NOW, AuditFactory


def test_list_records_newest_first(factory: AuditFactory) -> None:
    older = factory.record(created_at=NOW - timedelta(hours=1))
    newer = factory.record(created_at=NOW)
    same_time = factory.record(created_at=NOW)
    page = list_records(factory.engine, AuditFilter())
    assert [summary.id for summary in page.records] == [same_time, newer, older]


def test_list_records_before_cursor_walks_all_pages(factory: AuditFactory) -> None:
    # Equal timestamps force the id tie-break in the cursor.
    ids = [factory.record(created_at=NOW + timedelta(minutes=i // 2)) for i in range(7)]
    seen: list[int] = []
    before = None
    while True:
        page = list_records(factory.engine, AuditFilter(), limit=3, before=before)
        seen.extend(summary.id for summary in page.records)
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == sorted(ids, reverse=True)


def test_list_records_page_numbers(factory: AuditFactory) -> None:
    ids = [factory.record(created_at=NOW + timedelta(minutes=i)) for i in range(5)]
    second = list_records(factory.engine, AuditFilter(), limit=2, page=2)
    assert [summary.id for summary in second.records] == [ids[2], ids[1]]


def test_list_records_last_page_has_no_cursor(factory: AuditFactory) -> None:
    factory.record()
    factory.record()
    page = list_records(factory.engine, AuditFilter(), limit=2)
    assert page.next_before is None


def test_list_records_unknown_before(factory: AuditFactory) -> None:
    with pytest.raises(AuditError, match="audit record 999 not found"):
        list_records(factory.engine, AuditFilter(), before=999)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "invalid --limit 0"),
        ({"page": 0}, "invalid --page 0"),
        ({"page": 1, "before": 1}, "cannot be combined"),
    ],
)
def test_list_records_bad_paging(
    factory: AuditFactory, options: dict[str, int], message: str
) -> None:
    with pytest.raises(AuditError, match=message):
        list_records(factory.engine, AuditFilter(), **options)


def test_get_record_unknown_id(factory: AuditFactory) -> None:
    with pytest.raises(AuditError, match="audit record 42 not found"):
        get_record(factory.engine, 42, instance="local")


def test_get_record_detail(factory: AuditFactory) -> None:
    record_id = factory.record(attempts=3)
    detail = get_record(factory.engine, record_id, instance="uat")
    item_id = detail.record["trigger_object"]["item_id"]
    assert detail.record["trigger_ref"] == (
        f"hqsync://uat/sites/litigation/isheets/matters/items/{item_id}"
    )
    assert [attempt["number"] for attempt in detail.attempts] == [1, 2, 3]
    assert detail.attempts[0]["started_at"] == "2026-12-01T12:00:01.000000Z"
    assert detail.attempts[2]["response_body"] == "boom 3"
    assert detail.record["created_at"] == "2026-12-01T12:00:00.000000Z"
    assert detail.record["event_id"].startswith("evt-")


def test_get_record_file_trigger_reference(factory: AuditFactory) -> None:
    record_id = factory.record(
        trigger_object={"kind": "file", "site": "deals & co", "file_id": 88}
    )
    detail = get_record(factory.engine, record_id, instance="local")
    assert (
        detail.record["trigger_ref"] == "hqsync://local/sites/deals%20%26%20co/files/88"
    )


def test_get_record_redacts_again(factory: AuditFactory) -> None:
    record_id = factory.record(
        api_url=f"https://user:{CANARY}@pa.example.invalid/run?sv=1.0&sig={CANARY}",
        request_headers={"Authorization": f"Bearer {CANARY}", "Accept": "*/*"},
    )
    detail = get_record(factory.engine, record_id, instance="local")
    assert CANARY not in detail.record["api_url"]
    assert detail.record["request_headers"] == {
        "Authorization": "Bearer REDACTED",
        "Accept": "*/*",
    }


def test_get_record_lists_retries(factory: AuditFactory) -> None:
    original = factory.record()
    retry = factory.record(status="pending", retry_of=original)
    detail = get_record(factory.engine, original, instance="local")
    assert detail.retried_as == [retry]
    with factory.engine.connect() as connection:
        linked = connection.execute(
            sa.select(schema.audit_records.c.retry_of).where(
                schema.audit_records.c.id == retry
            )
        ).scalar_one()
    assert linked == original

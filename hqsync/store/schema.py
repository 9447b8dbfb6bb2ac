"""The instance store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Alembic migrations under ``migrations/versions`` create these tables; a change
here needs a new migration. Times are timezone-aware UTC everywhere.

Live state is one generic ``resources`` table: every service, site, iSheet,
column, folder and rule is a row with an instance-assigned numeric ``id`` (the
id HighQ would show and the webhook payload carries), a ``kind``, a ``scope``
naming its parent (``""`` for services and sites, ``"<site>"`` for iSheets,
folders and rules, ``"<site>/<isheet>"`` for columns) and a ``spec`` holding
the normalised non-secret fields. Secrets are Fernet-encrypted in ``secrets``
and compared through keyed ``fingerprints``, never in the clear.

The delivery side is an outbox: ``events`` holds each trigger event once,
``audit_records`` one row per rule action that fired (a webhook delivery for
external actions), and ``attempts`` one row per HTTP attempt.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = DateTime(timezone=True)

# Instance-wide key/value facts: instance_id, serial (bumped by every apply).
instance_meta = Table(
    "instance_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

resources = Table(
    "resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # service, site, isheet, column, folder or rule
    Column("kind", String(16), nullable=False),
    Column("scope", String(512), nullable=False, server_default=""),
    Column("name", String(512), nullable=False),
    # NFC-normalised, case-folded name: two names that differ only there clash.
    Column("name_key", String(512), nullable=False),
    Column("parent_id", Integer, ForeignKey("resources.id", ondelete="CASCADE")),
    Column("spec", JSON, nullable=False),
    Column("secrets", LargeBinary),  # Fernet token of a JSON object, or NULL
    Column("fingerprints", JSON, nullable=False, server_default="{}"),
    Column("managed", Boolean, nullable=False, server_default="1"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("kind", "scope", "name_key"),
    Index(None, "parent_id"),
)

# The apply lock on SQLite (PostgreSQL uses an advisory lock as well).
locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("acquired_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(256), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("site", String(512), nullable=False),
    Column("body", JSON, nullable=False),  # the event as pushed
    Column("occurred_at", Timestamp, nullable=False),
    Column("received_at", Timestamp, nullable=False),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_pk", ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    # Rule, site and service are copied by value: the audit outlives renames.
    Column("rule_id", Integer, nullable=False),
    Column("rule_name", String(512), nullable=False),
    Column("site_name", String(512), nullable=False),
    Column("action_index", Integer, nullable=False),
    # send_to_external_service or internal
    Column("action_type", String(32), nullable=False),
    Column("action_detail", JSON, nullable=False),
    Column("trigger_object", JSON, nullable=False),  # kind, site, isheet, item/file id
    Column("service_id", Integer),
    Column("service_name", String(512)),
    # Same on every retry of this delivery, sent as a header for deduplication.
    Column("delivery_id", String(64), unique=True),
    Column("status", String(16), nullable=False),  # pending|success|failed
    Column("api_url", Text),  # credentials redacted
    Column("request_headers", JSON),  # auth redacted
    Column("request_body", JSON),  # the V1 webhook body
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Timestamp),
    Column("window_closes_at", Timestamp),
    Column("lease_owner", String(256)),
    Column("lease_expires_at", Timestamp),
    Column("error_message", Text),
    Column("retry_of", ForeignKey("audit_records.id", ondelete="SET NULL")),
    Column("created_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Index(None, "status", "next_attempt_at"),
    Index(None, "created_at"),
    Index(None, "event_pk"),
    # Finds the redeliveries of a record (audit retry and prune); added in 0002.
    Index(None, "retry_of"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "record_id",
        ForeignKey("audit_records.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # success|retry|failed
    Column("http_status", Integer),
    Column("error_class", String(64)),
    Column("error_message", Text),
    Column("location", Text),  # a redirect's Location, credentials redacted
    Column("response_headers", JSON),
    Column("response_body", Text),  # capped at 64 KiB
    Column("runner", String(256)),
    UniqueConstraint("record_id", "number"),
)

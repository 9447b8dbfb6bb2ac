"""Index audit_records.retry_of, so finding a record's redeliveries needs no scan.

``hqsync audit retry`` checks whether a record was already redelivered, and
``hqsync audit prune`` clears the links of redeliveries to the records it
deletes; both look records up by ``retry_of``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_records_retry_of"), ["retry_of"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_records_retry_of"))

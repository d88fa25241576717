"""Audit records keyed by their place in the audit spool (segment id, sequence number), unique.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("spool_id", sa.String(length=64), nullable=True))
    op.add_column("audit_events", sa.Column("spool_seq", sa.BigInteger(), nullable=True))
    # A unique index: SQLite adds it in place (a table constraint would need a table copy).
    op.create_index("uq_audit_events_spool_id_spool_seq", "audit_events", ["spool_id", "spool_seq"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_audit_events_spool_id_spool_seq", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("spool_seq")
        batch.drop_column("spool_id")

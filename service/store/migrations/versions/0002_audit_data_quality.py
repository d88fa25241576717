"""Audit events keep their data quality: resources dropped, keys unreadable, screening withheld.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: events written before this revision have no record of it.
    op.add_column("audit_events", sa.Column("data_quality", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_events", "data_quality")

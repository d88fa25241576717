"""Initial schema: audit events (with rule results and cards) and card feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in service/store/tables.py as of this revision: a migration
# must keep meaning what it meant when it first ran, whatever the code does later.
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("audit_id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", _Time, nullable=False),
        sa.Column("hook_instance", sa.String(), nullable=False),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("hook", sa.String(), nullable=False),
        sa.Column("service_version", sa.String(), nullable=False),
        sa.Column("knowledge_version", sa.String(), nullable=False),
        sa.Column("patient_pseudonym", sa.String(length=64), nullable=True),
        sa.Column("prefetch", sa.JSON(), nullable=False),
        sa.Column("fhir_queries", sa.JSON(), nullable=False),
        sa.Column("client_iss", sa.String(), nullable=True),
        sa.Column("client_tenant", sa.String(), nullable=True),
        sa.Column("client_jti", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_recorded_at"), "audit_events", ["recorded_at"])

    op.create_table(
        "audit_rule_results",
        sa.Column("audit_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("rule_version", sa.String(), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_events.audit_id"],
            name=op.f("fk_audit_rule_results_audit_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("audit_id", "position", name=op.f("pk_audit_rule_results")),
    )

    op.create_table(
        "audit_cards",
        sa.Column("audit_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("card_uuid", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("indicator", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_events.audit_id"],
            name=op.f("fk_audit_cards_audit_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("audit_id", "position", name=op.f("pk_audit_cards")),
    )
    op.create_index(op.f("ix_audit_cards_card_uuid"), "audit_cards", ["card_uuid"])

    op.create_table(
        "feedback",
        sa.Column("feedback_id", _Id, autoincrement=True, nullable=False),
        sa.Column("received_at", _Time, nullable=False),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("card_uuid", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_timestamp", _Time, nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=True),
        sa.Column("override_reason_system", sa.String(), nullable=True),
        sa.Column("override_reason_code", sa.String(), nullable=True),
        sa.Column("override_reason_display", sa.String(), nullable=True),
        sa.Column("has_user_comment", sa.Boolean(), nullable=False),
        sa.Column("known_card", sa.Boolean(), nullable=False),
        sa.Column("client_iss", sa.String(), nullable=True),
        sa.Column("client_tenant", sa.String(), nullable=True),
        sa.CheckConstraint("outcome IN ('accepted', 'overridden')", name=op.f("ck_feedback_outcome")),
        sa.PrimaryKeyConstraint("feedback_id", name=op.f("pk_feedback")),
        sa.UniqueConstraint(
            "card_uuid", "outcome", "outcome_timestamp", name=op.f("uq_feedback_card_uuid_outcome_outcome_timestamp")
        ),
    )
    op.create_index(op.f("ix_feedback_received_at"), "feedback", ["received_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("audit_cards")
    op.drop_table("audit_rule_results")
    op.drop_table("audit_events")

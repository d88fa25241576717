"""The store's tables: audit events with their rule results and cards, and card feedback.

Rule results and cards are child tables rather than JSON columns: the report groups and
joins on them (``rule_id``, ``card_uuid``) with plain, indexed SQL that means the same on
SQLite and PostgreSQL. Time columns are :class:`UTCDateTime`, so comparisons are
correct on SQLite too, which has no time-zone-aware type.

The Alembic migrations in ``migrations/versions`` must create exactly this schema
(a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "audit_cards", "audit_events", "audit_rule_results", "feedback", "metadata"]

# Deterministic constraint names, so later migrations can alter them on both backends.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC: ``timestamptz`` on PostgreSQL, UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only takes time-zone-aware datetimes")
        in_utc = value.astimezone(UTC)
        # SQLite keeps the text of the value: one zone for every row keeps its order and equality exact.
        return in_utc.replace(tzinfo=None) if dialect.name == "sqlite" else in_utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


audit_events = Table(
    "audit_events",
    metadata,
    Column("audit_id", String(36), primary_key=True),
    Column("recorded_at", UTCDateTime(), nullable=False, index=True),
    Column("hook_instance", String(), nullable=False),
    Column("service_id", String(), nullable=False),
    Column("hook", String(), nullable=False),
    Column("service_version", String(), nullable=False),
    Column("knowledge_version", String(), nullable=False),
    # HMAC-SHA256 of the FHIR patient id (hex); the raw id is never stored.
    Column("patient_pseudonym", String(64), nullable=True),
    # prefetch key -> present / null / absent / operation-outcome
    Column("prefetch", JSON(), nullable=False),
    # prefetch key -> resources fetched from fhirServer for it
    Column("fhir_queries", JSON(), nullable=False),
    Column("client_iss", String(), nullable=True),
    Column("client_tenant", String(), nullable=True),
    Column("client_jti", String(), nullable=True),
    Column("latency_ms", Float(), nullable=False),
    Column("status", Integer(), nullable=False),
    # what was not used and why, by key and reason (never ids): see service.audit.AuditEvent
    Column("data_quality", JSON(), nullable=True),
    # The record's key in the audit spool (segment id, sequence number in it): the writer
    # inserts with ON CONFLICT DO NOTHING on it, so a record sent twice is stored once.
    # Null for records stored before the spool (revision 0001).
    Column("spool_id", String(64), nullable=True),
    Column("spool_seq", BigInteger(), nullable=True),
    # A unique index rather than a table constraint: same guarantee, and SQLite can add
    # it without copying the table (which offline migration SQL could not do).
    Index("uq_audit_events_spool_id_spool_seq", "spool_id", "spool_seq", unique=True),
)

audit_rule_results = Table(
    "audit_rule_results",
    metadata,
    Column("audit_id", String(36), ForeignKey("audit_events.audit_id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer(), nullable=False),
    Column("rule_id", String(), nullable=False),
    Column("rule_version", String(), nullable=False),
    Column("result", String(32), nullable=False),
    PrimaryKeyConstraint("audit_id", "position"),
)

audit_cards = Table(
    "audit_cards",
    metadata,
    Column("audit_id", String(36), ForeignKey("audit_events.audit_id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer(), nullable=False),
    Column("card_uuid", String(), nullable=False, index=True),
    Column("rule_id", String(), nullable=False),
    Column("indicator", String(16), nullable=False),
    PrimaryKeyConstraint("audit_id", "position"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("feedback_id", _BigId, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("service_id", String(), nullable=False),
    Column("card_uuid", String(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", UTCDateTime(), nullable=False),
    # suggestion uuids, for accepted outcomes
    Column("accepted_suggestions", JSON(), nullable=True),
    Column("override_reason_system", String(), nullable=True),
    Column("override_reason_code", String(), nullable=True),
    Column("override_reason_display", String(), nullable=True),
    # whether the user typed a comment; its free text may name the patient, so it is not kept
    Column("has_user_comment", Boolean(), nullable=False),
    # whether the card uuid was in the audit trail when the feedback arrived
    Column("known_card", Boolean(), nullable=False),
    Column("client_iss", String(), nullable=True),
    Column("client_tenant", String(), nullable=True),
    # The spec's idempotency key: a client may post the same outcome again (retries, batches).
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp"),
    CheckConstraint("outcome IN ('accepted', 'overridden')", name="outcome"),
)

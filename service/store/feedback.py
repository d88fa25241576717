"""Card feedback, stored once per (card, outcome, outcomeTimestamp).

The spec lets a client send feedback "multiple times for a card" and in batches, so
the endpoint is idempotent: a unique constraint on the key and an insert that skips
conflicts (``ON CONFLICT DO NOTHING``, in each dialect's syntax) make a repeated or
concurrent post store each outcome exactly once, without a read-then-write race.
Feedback on a card the audit trail does not know is kept and flagged, not refused:
the client cannot fix it, and refusing would lose a real clinician's answer. A card is
known to the service that showed it: feedback on a patient-view card posted to the
order-sign service is flagged too (each service has its own feedback URL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cds_hooks.models import FeedbackItem, FeedbackRequest
from cds_hooks.registry import ClientIdentity
from service.store.db import write_transaction
from service.store.tables import audit_cards, audit_events, feedback

__all__ = ["FeedbackStore", "outcome_instant"]

#: A card shown moments ago may still wait in the audit queue; waiting this long for it
#: lets it count as known, without holding the client's request hostage to a slow writer.
_AUDIT_SETTLE_S = 2.0
#: Card uuids per ``IN (...)`` lookup: far below SQLite's and asyncpg's parameter limits.
_LOOKUP_CHUNK = 500
_KEY_COLUMNS = ("card_uuid", "outcome", "outcome_timestamp")

_Key = tuple[str, str, datetime]


def outcome_instant(item: FeedbackItem) -> datetime:
    """``outcomeTimestamp`` as an aware UTC datetime: one instant, whatever its spelling."""
    return datetime.fromisoformat(item.outcomeTimestamp.replace("Z", "+00:00")).astimezone(UTC)


class FeedbackStore:
    """A :class:`service.screening.FeedbackSink` on the store's database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        settle_audit: Callable[[float], Awaitable[bool]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._settle_audit = settle_audit
        self._now = clock or (lambda: datetime.now(UTC))

    async def record_feedback(
        self, service_id: str, feedback_request: FeedbackRequest, client: ClientIdentity | None
    ) -> Mapping[str, Any]:
        """Store the batch; the receipt counts new rows, repeats and cards the audit trail does not know."""
        items = feedback_request.feedback
        if self._settle_audit is not None:
            await self._settle_audit(_AUDIT_SETTLE_S)
        received_at = self._now()
        rows: dict[_Key, dict[str, Any]] = {}
        for item in items:
            key = (item.card, item.outcome, outcome_instant(item))
            rows.setdefault(key, _row(item, key, service_id, client, received_at))
        async with write_transaction(self._engine) as connection:
            known = await _known_cards(connection, service_id, sorted({item.card for item in items}))
            for row in rows.values():
                row["known_card"] = row["card_uuid"] in known
            stored = await _insert_new(connection, list(rows.values()))
        return {
            "stored": stored,
            "duplicates": len(items) - stored,
            "unknownCards": sum(1 for item in items if item.card not in known),
        }


def _row(
    item: FeedbackItem, key: _Key, service_id: str, client: ClientIdentity | None, received_at: datetime
) -> dict[str, Any]:
    reason = item.overrideReason.reason if item.overrideReason else None
    return {
        "received_at": received_at,
        "service_id": service_id,
        "card_uuid": key[0],
        "outcome": key[1],
        "outcome_timestamp": key[2],
        "accepted_suggestions": [suggestion.id for suggestion in item.acceptedSuggestions]
        if item.acceptedSuggestions
        else None,
        "override_reason_system": reason.system if reason else None,
        "override_reason_code": reason.code if reason else None,
        # Clients often send the reason's code without its display.
        "override_reason_display": reason.display if reason else None,
        "has_user_comment": bool(item.overrideReason and item.overrideReason.userComment),
        "client_iss": client.issuer if client else None,
        "client_tenant": client.tenant if client else None,
    }


async def _known_cards(connection: AsyncConnection, service_id: str, card_uuids: Sequence[str]) -> set[str]:
    """Which of ``card_uuids`` the service ``service_id`` showed."""
    known: set[str] = set()
    shown = audit_cards.join(audit_events, audit_cards.c.audit_id == audit_events.c.audit_id)
    for start in range(0, len(card_uuids), _LOOKUP_CHUNK):
        chunk = card_uuids[start : start + _LOOKUP_CHUNK]
        result = await connection.execute(
            select(audit_cards.c.card_uuid)
            .select_from(shown)
            .where(audit_cards.c.card_uuid.in_(chunk), audit_events.c.service_id == service_id)
            .distinct()
        )
        known.update(result.scalars())
    return known


async def _insert_new(connection: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping keys already stored; returns how many were new."""
    if not rows:
        return 0
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(feedback)
        .on_conflict_do_nothing(index_elements=list(_KEY_COLUMNS))
        .returning(feedback.c.feedback_id)
    )
    # Only rows actually inserted come back, batch by batch ("insertmanyvalues").
    result = await connection.execute(statement, rows)
    return len(result.all())

"""Card feedback, stored once per (card, outcome, outcomeTimestamp).

The spec lets a client send feedback "multiple times for a card" and in batches, so
the endpoint is idempotent: a unique constraint on the key and an insert that skips
conflicts (``ON CONFLICT DO NOTHING``, in each dialect's syntax) make a repeated or
concurrent post store each outcome exactly once, without a read-then-write race.
Feedback on a card the audit trail does not know is kept and flagged, not refused:
the client cannot fix it, and refusing would lose a real clinician's answer. A card is
known to the service that showed it: feedback on a patient-view card posted to the
order-sign service is flagged too (each service has its own feedback URL).

Nothing acknowledged is lost: a field the store cannot hold (too long, a control
character; :data:`FEEDBACK_TEXT_CAPS`) answers 400 naming the field, and a database
that cannot be reached answers 503 with ``Retry-After``, so the client sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cds_hooks.errors import ClientError, ServiceUnavailable
from cds_hooks.models import FeedbackItem, FeedbackRequest
from cds_hooks.registry import ClientIdentity
from service.store.db import insert_skipping_conflicts, write_transaction
from service.store.failures import classify
from service.store.tables import audit_cards, audit_events, feedback
from service.store.text import unstorable_reason

__all__ = ["FEEDBACK_TEXT_CAPS", "FeedbackStore", "outcome_instant"]

#: Characters the store keeps of each feedback field. A card uuid is part of the unique
#: key, whose index holds at most about 2,700 bytes on PostgreSQL; our cards' uuids have
#: 36. A coding's system is a URI, its code and display short texts (FHIR R4 puts no
#: bound on them; these caps leave room for any real terminology).
FEEDBACK_TEXT_CAPS = {
    "card": 256,
    "acceptedSuggestions.id": 256,
    "overrideReason.reason.system": 1024,
    "overrideReason.reason.code": 256,
    "overrideReason.reason.display": 1024,
}
#: Suggestion ids kept per feedback item: a card has a handful of suggestions.
MAX_ACCEPTED_SUGGESTIONS = 100
#: Seconds a client should wait before sending feedback again when the database is down or busy.
RETRY_AFTER_UNREACHABLE_S = 30
RETRY_AFTER_TRANSIENT_S = 5

#: A card shown moments ago may still wait in the audit queue; waiting this long for it
#: lets it count as known, without holding the client's request hostage to a slow writer.
_AUDIT_SETTLE_S = 2.0
#: Card uuids per ``IN (...)`` lookup: far below SQLite's and asyncpg's parameter limits.
_LOOKUP_CHUNK = 500
_KEY_COLUMNS = ("card_uuid", "outcome", "outcome_timestamp")

_Key = tuple[str, str, datetime]

logger = logging.getLogger(__name__)


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
        problems = _unstorable_fields(items)
        if problems:
            raise ClientError("The feedback holds fields the service cannot store.", details=problems)
        if self._settle_audit is not None:
            await self._settle_audit(_AUDIT_SETTLE_S)
        received_at = self._now()
        rows: dict[_Key, dict[str, Any]] = {}
        for item in items:
            key = (item.card, item.outcome, outcome_instant(item))
            rows.setdefault(key, _row(item, key, service_id, client, received_at))
        try:
            async with write_transaction(self._engine) as connection:
                known = await _known_cards(connection, service_id, sorted({item.card for item in items}))
                for row in rows.values():
                    row["known_card"] = row["card_uuid"] in known
                stored = await _insert_new(connection, list(rows.values()))
        except Exception as exc:
            failure = classify(exc)
            if failure == "permanent":
                raise  # a value validation let through: a bug, answered 500 and logged
            logger.warning("feedback not stored: database %s", failure, exc_info=exc, extra={"event": "feedback_503"})
            retry = RETRY_AFTER_UNREACHABLE_S if failure == "unreachable" else RETRY_AFTER_TRANSIENT_S
            raise ServiceUnavailable(
                "The feedback could not be stored now; send it again later.", retry_after_s=retry
            ) from None
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
    statement = insert_skipping_conflicts(connection, feedback, list(_KEY_COLUMNS)).returning(feedback.c.feedback_id)
    # Only rows actually inserted come back, batch by batch ("insertmanyvalues").
    result = await connection.execute(statement, rows)
    return len(result.all())


def _unstorable_fields(items: Sequence[FeedbackItem]) -> list[str]:
    """``feedback[i].field: why`` for each stored field the store cannot hold as sent."""
    problems: list[str] = []

    def check(index: int, field: str, value: str | None) -> None:
        reason = unstorable_reason(value, FEEDBACK_TEXT_CAPS[field]) if value is not None else None
        if reason is not None:
            problems.append(f"feedback.{index}.{field}: {reason}")

    for index, item in enumerate(items):
        check(index, "card", item.card)
        suggestions = item.acceptedSuggestions or []
        if len(suggestions) > MAX_ACCEPTED_SUGGESTIONS:
            problems.append(f"feedback.{index}.acceptedSuggestions: more than {MAX_ACCEPTED_SUGGESTIONS}")
        for suggestion in suggestions:
            check(index, "acceptedSuggestions.id", suggestion.id)
        reason = item.overrideReason.reason if item.overrideReason else None
        if reason is not None:
            check(index, "overrideReason.reason.system", reason.system)
            check(index, "overrideReason.reason.code", reason.code)
            check(index, "overrideReason.reason.display", reason.display)
    return problems

"""Retention: audit records and feedback older than ``store.retention_days`` are deleted.

Audit age is its ``recorded_at`` and feedback age its ``received_at``: both are the
service's own clock, unlike ``outcomeTimestamp``, which the client sets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import write_transaction
from service.store.tables import audit_cards, audit_events, audit_rule_results, feedback

__all__ = ["PURGE_INTERVAL", "PurgeResult", "purge_expired", "purge_periodically"]

logger = logging.getLogger(__name__)

#: Retention is counted in days; purging four times a day keeps nothing more than six
#: hours past its limit, at the cost of one indexed range delete each time.
PURGE_INTERVAL = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    cutoff: datetime
    audit_events: int
    feedback: int


async def purge_expired(engine: AsyncEngine, *, retention_days: int, now: datetime) -> PurgeResult:
    """Delete what was recorded before ``now - retention_days``, in one transaction."""
    cutoff = now - timedelta(days=retention_days)
    expired = select(audit_events.c.audit_id).where(audit_events.c.recorded_at < cutoff)
    async with write_transaction(engine) as connection:
        # Children first and explicitly: SQLite only cascades when foreign keys are enabled.
        await connection.execute(delete(audit_rule_results).where(audit_rule_results.c.audit_id.in_(expired)))
        await connection.execute(delete(audit_cards).where(audit_cards.c.audit_id.in_(expired)))
        events = await connection.execute(delete(audit_events).where(audit_events.c.recorded_at < cutoff))
        answers = await connection.execute(delete(feedback).where(feedback.c.received_at < cutoff))
    result = PurgeResult(cutoff=cutoff, audit_events=events.rowcount, feedback=answers.rowcount)
    if result.audit_events or result.feedback:
        logger.info(
            "retention purge: %d audit events and %d feedback records older than %d days deleted",
            result.audit_events,
            result.feedback,
            retention_days,
            extra={
                "event": "retention_purge",
                "purged_audit_events": result.audit_events,
                "purged_feedback": result.feedback,
            },
        )
    return result


async def purge_periodically(
    engine: AsyncEngine,
    *,
    retention_days: int,
    interval: timedelta = PURGE_INTERVAL,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Purge every ``interval``, forever (cancel the task to stop); failures are logged and retried."""
    now = clock or (lambda: datetime.now(UTC))
    while True:
        await asyncio.sleep(interval.total_seconds())
        try:
            await purge_expired(engine, retention_days=retention_days, now=now())
        except Exception as exc:  # a database hiccup must not end retention for good
            logger.error("retention purge failed", exc_info=exc, extra={"event": "retention_purge_failed"})

"""Retention: what is older than the retention period goes, children included; the rest stays."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cds_hooks.models import FeedbackItem, FeedbackRequest
from service.audit import AuditEvent
from service.store.audit import write_audit_events
from service.store.feedback import FeedbackStore
from service.store.pseudonym import Pseudonymiser
from service.store.retention import purge_expired, purge_periodically
from service.store.tables import audit_cards, audit_events, audit_rule_results, feedback

pytestmark = pytest.mark.anyio

AuditEventFactory = Callable[..., AuditEvent]
FeedbackFactory = Callable[..., FeedbackItem]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def seed(engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory) -> None:
    """One audit event and one feedback 401 days old, and one of each 399 days old."""
    for age_days, card in ((401, "old-card"), (399, "new-card")):
        when = NOW - timedelta(days=age_days)
        event = make_audit_event(recorded_at=when, cards=[(card, "R1")], rules=[("R1", "fired"), ("R2", "not_fired")])
        await write_audit_events(engine, [event], Pseudonymiser(b"k" * 32), "0.1.0")
        store = FeedbackStore(engine, clock=lambda when=when: when)
        await store.record_feedback("mscc-patient-view", FeedbackRequest(feedback=[make_feedback(card)]), None)


async def test_purge_deletes_what_is_older_than_the_retention(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)

    result = await purge_expired(store_engine, retention_days=400, now=NOW)

    assert (result.audit_events, result.feedback) == (1, 1)
    assert result.cutoff == NOW - timedelta(days=400)
    async with store_engine.connect() as connection:
        assert (await connection.execute(select(audit_cards.c.card_uuid))).scalars().all() == ["new-card"]
        assert (await connection.execute(select(feedback.c.card_uuid))).scalars().all() == ["new-card"]
    assert await count(store_engine, audit_events) == 1
    assert await count(store_engine, audit_rule_results) == 2


async def test_purge_with_nothing_expired_deletes_nothing(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)

    result = await purge_expired(store_engine, retention_days=500, now=NOW)

    assert (result.audit_events, result.feedback) == (0, 0)
    assert await count(store_engine, audit_events) == 2
    assert await count(store_engine, feedback) == 2


async def test_periodic_purge_runs_until_cancelled(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)
    task = asyncio.create_task(
        purge_periodically(store_engine, retention_days=400, interval=timedelta(milliseconds=1), clock=lambda: NOW)
    )
    try:
        async with asyncio.timeout(10):
            while await count(store_engine, feedback) != 1:
                await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await count(store_engine, audit_events) == 1


async def test_a_failed_periodic_purge_is_logged_and_retried(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="service.store.retention")
    task = asyncio.create_task(
        purge_periodically(engine, retention_days=400, interval=timedelta(milliseconds=1), clock=lambda: NOW)
    )
    try:
        async with asyncio.timeout(10):
            while caplog.messages.count("retention purge failed") < 2:
                await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

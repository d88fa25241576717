"""The audit trail: one record per invocation, patient pseudonymised, written off the hook's path."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.audit import AuditEvent
from service.store.audit import AuditWriter, write_audit_events
from service.store.pseudonym import Pseudonymiser
from service.store.tables import audit_cards, audit_events, audit_rule_results, feedback, metadata

pytestmark = pytest.mark.anyio

AuditEventFactory = Callable[..., AuditEvent]
KEY = b"0123456789abcdef0123456789abcdef"
RAW_PATIENT_ID = "s07-patient-Zq9"


def writer(engine: AsyncEngine, *, queue_size: int = 100) -> AuditWriter:
    return AuditWriter(engine, Pseudonymiser(KEY), queue_size=queue_size, service_version="0.1.0")


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def test_one_record_holds_the_whole_invocation(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    event = make_audit_event(
        patient_id=RAW_PATIENT_ID,
        cards=[("card-a", "R1"), ("card-b", "R6b")],
        rules=[("R1", "fired"), ("R2", "suppressed"), ("R6b", "fired"), ("R7", "insufficient_data")],
        status=200,
    )

    (audit_id,) = await write_audit_events(store_engine, [event], Pseudonymiser(KEY), "0.1.0")

    async with store_engine.connect() as connection:
        record = (await connection.execute(select(audit_events))).mappings().one()
        rules = (await connection.execute(select(audit_rule_results).order_by("position"))).mappings().all()
        cards = (await connection.execute(select(audit_cards).order_by("position"))).mappings().all()
    assert record["audit_id"] == audit_id
    assert record["recorded_at"] == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert record["hook_instance"] == event.hook_instance
    assert (record["service_id"], record["hook"]) == ("mscc-patient-view", "patient-view")
    assert (record["service_version"], record["knowledge_version"]) == ("0.1.0", "0123456789abcdef")
    assert record["prefetch"] == {"patient": "present", "conditions": "present", "labs": "null"}
    assert record["fhir_queries"] == {"imagingStudies": 3}
    assert (record["client_iss"], record["client_tenant"], record["client_jti"]) == (
        "https://ehr.example.org",
        "hospital-a",
        "jti-1",
    )
    assert (record["latency_ms"], record["status"]) == (12.5, 200)
    assert record["patient_pseudonym"] == hmac.new(KEY, RAW_PATIENT_ID.encode(), hashlib.sha256).hexdigest()
    assert [(rule["rule_id"], rule["rule_version"], rule["result"]) for rule in rules] == [
        ("R1", "1.0.0", "fired"),
        ("R2", "1.0.0", "suppressed"),
        ("R6b", "1.0.0", "fired"),
        ("R7", "1.0.0", "insufficient_data"),
    ]
    assert [(card["card_uuid"], card["rule_id"], card["indicator"]) for card in cards] == [
        ("card-a", "R1", "critical"),
        ("card-b", "R6b", "critical"),
    ]


async def test_the_raw_patient_id_is_in_no_column_of_any_table(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    events = [make_audit_event(patient_id=RAW_PATIENT_ID, cards=[("card-a", "R1")], rules=[("R1", "fired")])]
    await write_audit_events(store_engine, events, Pseudonymiser(KEY), "0.1.0")

    async with store_engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in (await connection.execute(select(table))).all():
                assert not any(RAW_PATIENT_ID in str(value) for value in row), table.name
    assert await count(store_engine, audit_events) == 1


async def test_an_event_without_patient_has_no_pseudonym(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    await write_audit_events(store_engine, [make_audit_event(patient_id=None, status=400)], Pseudonymiser(KEY), "x")

    async with store_engine.connect() as connection:
        record = (await connection.execute(select(audit_events))).mappings().one()
    assert record["patient_pseudonym"] is None
    assert record["status"] == 400


async def test_writer_stores_what_the_hook_records(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    audit = writer(store_engine)
    audit.start()
    try:
        for number in range(25):
            await audit.record(make_audit_event(cards=[(f"card-{number}", "R1")], rules=[("R1", "fired")]))
        assert await audit.flush(timeout=10)
        assert await count(store_engine, audit_events) == 25
        assert await count(store_engine, audit_cards) == 25
        assert await count(store_engine, audit_rule_results) == 25
    finally:
        await audit.stop(timeout=10)
    assert (audit.written, audit.dropped, audit.failed) == (25, 0, 0)


async def test_stop_drains_the_queue(store_engine: AsyncEngine, make_audit_event: AuditEventFactory) -> None:
    audit = writer(store_engine)
    audit.start()
    for _ in range(40):
        await audit.record(make_audit_event())

    await audit.stop(timeout=10)

    assert await count(store_engine, audit_events) == 40
    assert audit.written == 40


async def test_a_full_queue_drops_and_counts_in_the_log(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    audit = writer(store_engine, queue_size=3)
    audit.start()
    caplog.set_level(logging.WARNING, logger="service.store.audit")
    # record() never suspends, so the writer task gets no turn in this loop: the queue fills up.
    for _ in range(5):
        await audit.record(make_audit_event())

    await audit.stop(timeout=10)

    assert audit.dropped == 2
    assert await count(store_engine, audit_events) == 3
    messages = [record.getMessage() for record in caplog.records]
    assert "audit event dropped: the audit queue is full" in messages
    assert "2 audit events dropped (2 in total)" in messages
    # The JSON log only renders allowlisted extra fields, never the message's arguments.
    (summary,) = [record for record in caplog.records if getattr(record, "event", None) == "audit_dropped"]
    assert (summary.count, summary.total) == (2, 2)


async def test_events_after_stop_are_counted_as_dropped(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    audit = writer(store_engine)
    caplog.set_level(logging.WARNING, logger="service.store.audit")

    await audit.record(make_audit_event())

    assert audit.dropped == 1
    assert "audit event dropped: the audit writer is not running" in caplog.messages


async def test_a_failed_write_is_counted_and_the_writer_carries_on(
    engine: AsyncEngine, make_audit_event: AuditEventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    audit = writer(engine)  # not migrated: no tables, every write fails
    audit.start()
    caplog.set_level(logging.ERROR, logger="service.store.audit")
    try:
        await audit.record(make_audit_event(patient_id=RAW_PATIENT_ID))
        assert await audit.flush(timeout=10)
        await audit.record(make_audit_event(patient_id=RAW_PATIENT_ID))
        assert await audit.flush(timeout=10)
        assert audit.running
    finally:
        await audit.stop(timeout=10)
    assert (audit.written, audit.failed) == (0, 2)
    assert caplog.messages.count("audit write failed, 1 events lost") == 2
    assert RAW_PATIENT_ID not in caplog.text


async def test_feedback_waits_for_cards_still_in_the_audit_queue(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    from cds_hooks.models import FeedbackItem, FeedbackRequest
    from service.store.feedback import FeedbackStore

    audit = writer(store_engine)
    audit.start()
    try:
        await audit.record(make_audit_event(cards=[("just-shown", "R1")]))
        store = FeedbackStore(store_engine, settle_audit=audit.flush)
        item = FeedbackItem(card="just-shown", outcome="overridden", outcomeTimestamp="2026-06-01T09:01:00Z")

        receipt = await store.record_feedback("mscc-patient-view", FeedbackRequest(feedback=[item]), None)
    finally:
        await audit.stop(timeout=10)

    assert receipt == {"stored": 1, "duplicates": 0, "unknownCards": 0}
    async with store_engine.connect() as connection:
        assert (await connection.execute(select(feedback.c.known_card))).scalar_one() is True

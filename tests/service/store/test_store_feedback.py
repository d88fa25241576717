"""Feedback: stored once per (card, outcome, outcomeTimestamp), whatever is posted twice or at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cds_hooks.models import FeedbackItem, FeedbackRequest
from cds_hooks.registry import ClientIdentity
from service.audit import AuditEvent
from service.store.audit import write_audit_events
from service.store.feedback import FeedbackStore
from service.store.pseudonym import Pseudonymiser
from service.store.tables import feedback

pytestmark = pytest.mark.anyio

AuditEventFactory = Callable[..., AuditEvent]
FeedbackFactory = Callable[..., FeedbackItem]

RECEIVED = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
CLIENT = ClientIdentity(issuer="https://ehr.example.org", jti="jti-9", tenant="hospital-a")


def feedback_store(engine: AsyncEngine) -> FeedbackStore:
    return FeedbackStore(engine, clock=lambda: RECEIVED)


async def rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as connection:
        result = await connection.execute(select(feedback).order_by(feedback.c.feedback_id))
        return [dict(row) for row in result.mappings()]


async def row_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(feedback))).scalar_one()


async def show_cards(engine: AsyncEngine, make_audit_event: AuditEventFactory, *uuids: str) -> None:
    event = make_audit_event(cards=[(uuid, "R1") for uuid in uuids])
    await write_audit_events(engine, [event], Pseudonymiser(b"k" * 32), "0.1.0")


async def test_feedback_is_stored_with_its_details(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await show_cards(store_engine, make_audit_event, "card-1", "card-2")
    batch = FeedbackRequest(
        feedback=[
            make_feedback("card-1", "accepted", at="2026-06-01T09:05:00.250Z"),
            make_feedback(
                "card-2",
                at="2026-06-01T10:06:00+01:00",
                reason={
                    "system": "https://fhir.mscc-cds.org/CodeSystem/override",
                    "code": "already-imaged",
                    "display": "Already imaged",
                },
                comment="Patient X had an MRI yesterday",
            ),
        ]
    )

    receipt = await feedback_store(store_engine).record_feedback("mscc-patient-view", batch, CLIENT)

    assert receipt == {"stored": 2, "duplicates": 0, "unknownCards": 0}
    accepted, overridden = await rows(store_engine)
    assert accepted["card_uuid"] == "card-1"
    assert accepted["outcome"] == "accepted"
    assert accepted["outcome_timestamp"] == datetime(2026, 6, 1, 9, 5, 0, 250_000, tzinfo=UTC)
    assert accepted["accepted_suggestions"] == ["card-1-suggestion"]
    assert accepted["override_reason_code"] is None
    assert accepted["known_card"] is True
    assert accepted["received_at"] == RECEIVED
    assert accepted["service_id"] == "mscc-patient-view"
    assert (accepted["client_iss"], accepted["client_tenant"]) == ("https://ehr.example.org", "hospital-a")
    assert overridden["outcome_timestamp"] == datetime(2026, 6, 1, 9, 6, tzinfo=UTC)
    assert overridden["override_reason_system"] == "https://fhir.mscc-cds.org/CodeSystem/override"
    assert overridden["override_reason_code"] == "already-imaged"
    assert overridden["override_reason_display"] == "Already imaged"
    assert overridden["has_user_comment"] is True
    # The comment's free text may name the patient: only the fact that there was one is kept.
    assert not any("Patient X" in str(value) for value in overridden.values())


async def test_override_reason_without_display_is_accepted(
    store_engine: AsyncEngine, make_feedback: FeedbackFactory
) -> None:
    batch = FeedbackRequest(feedback=[make_feedback("card-1", reason={"system": "urn:local", "code": "not-relevant"})])

    receipt = await feedback_store(store_engine).record_feedback("mscc-patient-view", batch, None)

    assert receipt["stored"] == 1
    (row,) = await rows(store_engine)
    assert (row["override_reason_code"], row["override_reason_display"]) == ("not-relevant", None)
    assert row["has_user_comment"] is False
    assert row["client_iss"] is None


async def test_posting_the_same_batch_twice_stores_it_once(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await show_cards(store_engine, make_audit_event, "card-1")
    batch = FeedbackRequest(
        feedback=[make_feedback("card-1", "accepted"), make_feedback("card-1", at="2026-06-01T09:07:00Z")]
    )
    store = feedback_store(store_engine)

    first = await store.record_feedback("mscc-patient-view", batch, None)
    second = await store.record_feedback("mscc-patient-view", batch, None)

    assert first == {"stored": 2, "duplicates": 0, "unknownCards": 0}
    assert second == {"stored": 0, "duplicates": 2, "unknownCards": 0}
    assert await row_count(store_engine) == 2


async def test_one_instant_spelt_differently_is_one_outcome(
    store_engine: AsyncEngine, make_feedback: FeedbackFactory
) -> None:
    batch = FeedbackRequest(
        feedback=[
            make_feedback("card-1", at="2026-06-01T09:05:00Z"),
            make_feedback("card-1", at="2026-06-01T09:05:00.000+00:00"),
            make_feedback("card-1", at="2026-06-01T11:05:00+02:00"),
        ]
    )

    receipt = await feedback_store(store_engine).record_feedback("mscc-patient-view", batch, None)

    assert receipt == {"stored": 1, "duplicates": 2, "unknownCards": 3}
    assert await row_count(store_engine) == 1


async def test_other_outcomes_and_times_of_one_card_are_kept(
    store_engine: AsyncEngine, make_feedback: FeedbackFactory
) -> None:
    batch = FeedbackRequest(
        feedback=[
            make_feedback("card-1", "accepted", at="2026-06-01T09:05:00Z"),
            make_feedback("card-1", "overridden", at="2026-06-01T09:05:00Z"),
            make_feedback("card-1", "overridden", at="2026-06-01T09:05:01Z"),
        ]
    )

    receipt = await feedback_store(store_engine).record_feedback("mscc-patient-view", batch, None)

    assert receipt["stored"] == 3


async def test_concurrent_identical_and_overlapping_posts_store_each_outcome_once(
    store_engine: AsyncEngine, make_feedback: FeedbackFactory
) -> None:
    def batch(cards: range) -> FeedbackRequest:
        return FeedbackRequest(feedback=[make_feedback(f"card-{number}") for number in cards])

    store = feedback_store(store_engine)
    batches = [batch(range(20))] * 8 + [batch(range(start, start + 20)) for start in range(0, 40, 5)]

    receipts = await asyncio.gather(*(store.record_feedback("mscc-patient-view", one, None) for one in batches))

    distinct_cards = 55  # card-0 ... card-54
    assert await row_count(store_engine) == distinct_cards
    assert sum(receipt["stored"] for receipt in receipts) == distinct_cards
    assert sum(receipt["stored"] + receipt["duplicates"] for receipt in receipts) == 20 * len(batches)
    assert {row["card_uuid"] for row in await rows(store_engine)} == {f"card-{number}" for number in range(55)}


async def test_feedback_on_an_unknown_card_is_stored_and_flagged(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await show_cards(store_engine, make_audit_event, "shown-card")
    batch = FeedbackRequest(feedback=[make_feedback("shown-card"), make_feedback("never-shown")])

    receipt = await feedback_store(store_engine).record_feedback("mscc-patient-view", batch, None)

    assert receipt == {"stored": 2, "duplicates": 0, "unknownCards": 1}
    flags = {row["card_uuid"]: row["known_card"] for row in await rows(store_engine)}
    assert flags == {"shown-card": True, "never-shown": False}


async def test_a_batch_larger_than_one_lookup_is_stored_whole(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await show_cards(store_engine, make_audit_event, *(f"card-{number}" for number in range(0, 1200, 2)))
    batch = FeedbackRequest(feedback=[make_feedback(f"card-{number}") for number in range(1200)])

    receipt = await feedback_store(store_engine).record_feedback("mscc-patient-view", batch, None)

    assert receipt == {"stored": 1200, "duplicates": 0, "unknownCards": 600}


async def test_a_card_is_known_only_to_the_service_that_showed_it(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await show_cards(store_engine, make_audit_event, "card-a", "card-b")  # shown by mscc-patient-view
    store = feedback_store(store_engine)

    elsewhere = await store.record_feedback(
        "mscc-order-sign", FeedbackRequest(feedback=[make_feedback("card-a")]), None
    )
    here = await store.record_feedback("mscc-patient-view", FeedbackRequest(feedback=[make_feedback("card-b")]), None)

    assert elsewhere == {"stored": 1, "duplicates": 0, "unknownCards": 1}
    assert here == {"stored": 1, "duplicates": 0, "unknownCards": 0}
    stored = {row["card_uuid"]: (row["service_id"], row["known_card"]) for row in await rows(store_engine)}
    assert stored == {"card-a": ("mscc-order-sign", False), "card-b": ("mscc-patient-view", True)}

"""The alert-fatigue report: exact counts per rule on seeded audit records and feedback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cds_hooks.models import FeedbackItem, FeedbackRequest
from service.audit import AuditEvent
from service.store.audit import write_audit_events
from service.store.feedback import FeedbackStore
from service.store.pseudonym import Pseudonymiser
from service.store.report import (
    OverrideReasonCount,
    RuleSummary,
    build_report,
    format_report,
    reason_display,
    rule_order,
)

pytestmark = pytest.mark.anyio

AuditEventFactory = Callable[..., AuditEvent]
FeedbackFactory = Callable[..., FeedbackItem]
SINCE = datetime(2026, 5, 1, tzinfo=UTC)
UNTIL = datetime(2026, 6, 1, tzinfo=UTC)
SYSTEM = "https://fhir.mscc-cds.org/CodeSystem/override-reason"
ALREADY_IMAGED = {"system": SYSTEM, "code": "already-imaged", "display": "Already imaged"}
NOT_RELEVANT = {"system": SYSTEM, "code": "not-relevant", "display": "Not clinically relevant"}


def at(day: int, hour: int = 9, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


async def seed(engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory) -> None:
    events = [
        # Outside the period on both sides: the end is exclusive.
        make_audit_event(
            recorded_at=datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC), rules=[("R1", "fired")], cards=[("c0", "R1")]
        ),
        make_audit_event(recorded_at=UNTIL, rules=[("R1", "fired")], cards=[("c9", "R1")]),
        make_audit_event(
            recorded_at=at(10), rules=[("R1", "fired"), ("R2", "not_fired"), ("R10", "not_fired")], cards=[("c1", "R1")]
        ),
        make_audit_event(
            recorded_at=at(11),
            rules=[("R1", "fired"), ("R2", "fired"), ("R10", "not_fired")],
            cards=[("c2", "R1"), ("c3", "R2")],
        ),
        make_audit_event(
            recorded_at=at(12),
            rules=[("R1", "fired"), ("R2", "fired"), ("R2b", "fired"), ("R10", "fired")],
            cards=[("c4", "R1"), ("c5", "R2"), ("c6", "R2b"), ("c7", "R10")],
        ),
        make_audit_event(recorded_at=at(20), rules=[("R1", "fired"), ("R2", "suppressed")], cards=[("c8", "R1")]),
    ]
    await write_audit_events(engine, events, Pseudonymiser(b"k" * 32), "0.1.0")
    answers = [
        # c1: accepted, then overridden later: the later answer counts.
        make_feedback("c1", "accepted", at="2026-05-10T09:10:00Z"),
        make_feedback("c1", "overridden", at="2026-05-10T10:00:00Z", reason=ALREADY_IMAGED),
        # c2: the same reason without its display.
        make_feedback(
            "c2", "overridden", at="2026-05-11T10:00:00Z", reason={"system": SYSTEM, "code": "already-imaged"}
        ),
        make_feedback("c3", "accepted", at="2026-05-11T10:00:00Z"),
        make_feedback("c4", "overridden", at="2026-05-12T10:00:00Z"),
        make_feedback("c5", "overridden", at="2026-05-12T10:00:00Z", reason=NOT_RELEVANT, comment="see notes"),
        # c7: overridden, then accepted later.
        make_feedback("c7", "overridden", at="2026-05-12T10:00:00Z", reason=NOT_RELEVANT),
        make_feedback("c7", "accepted", at="2026-05-12T11:00:00Z"),
        make_feedback("c0", "overridden", at="2026-05-01T08:00:00Z", reason=NOT_RELEVANT),
    ]
    store = FeedbackStore(engine, clock=lambda: at(15))
    await store.record_feedback("mscc-patient-view", FeedbackRequest(feedback=answers), None)
    ghost = FeedbackRequest(feedback=[make_feedback("ghost-1")])
    await store.record_feedback("mscc-patient-view", ghost, None)
    late = FeedbackStore(engine, clock=lambda: at(2, month=6))
    await late.record_feedback("mscc-patient-view", FeedbackRequest(feedback=[make_feedback("ghost-2")]), None)


async def test_report_counts_each_rule_exactly(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)

    report = await build_report(store_engine, since=SINCE, until=UNTIL)

    assert report.rules == (
        RuleSummary(
            rule_id="R1",
            evaluated=4,
            shown=4,
            accepted=0,
            overridden=3,
            reasons=(
                OverrideReasonCount(code="already-imaged", system=SYSTEM, display="Already imaged", cards=2),
                OverrideReasonCount(code=None, system=None, display=None, cards=1),
            ),
        ),
        RuleSummary(
            rule_id="R2",
            evaluated=4,
            shown=2,
            accepted=1,
            overridden=1,
            reasons=(
                OverrideReasonCount(code="not-relevant", system=SYSTEM, display="Not clinically relevant", cards=1),
            ),
        ),
        RuleSummary(rule_id="R2b", evaluated=1, shown=1, accepted=0, overridden=0),
        RuleSummary(rule_id="R10", evaluated=3, shown=1, accepted=1, overridden=0),
    )
    assert report.unknown_card_feedback == 1
    total = report.total
    assert (total.evaluated, total.shown, total.accepted, total.overridden, total.without_feedback) == (12, 8, 2, 4, 2)


async def test_report_text_table(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)
    report = await build_report(store_engine, since=SINCE, until=UNTIL)

    text = format_report(report, period="2026-05-01 to 2026-05-31 (UTC)")

    assert text == (
        "MSCC CDS alert-fatigue report: cards shown 2026-05-01 to 2026-05-31 (UTC)\n"
        "Outcome of a card = its latest feedback; reasons are those of the overriding feedback.\n"
        "\n"
        "Rule   Evaluated  Shown  Accepted  Overridden  No feedback  Overridden %\n"
        "-----  ---------  -----  --------  ----------  -----------  ------------\n"
        "R1             4      4         0           3            1          75.0\n"
        "    overridden: Already imaged [already-imaged]: 2\n"
        "    overridden: no reason given: 1\n"
        "R2             4      2         1           1            0          50.0\n"
        "    overridden: Not clinically relevant [not-relevant]: 1\n"
        "R2b            1      1         0           0            1           0.0\n"
        "R10            3      1         1           0            0           0.0\n"
        "-----  ---------  -----  --------  ----------  -----------  ------------\n"
        "Total         12      8         2           4            2          50.0\n"
        "\n"
        "Feedback received in the period on cards not in the audit trail: 1\n"
    )


async def test_an_empty_period_reports_nothing(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)

    report = await build_report(
        store_engine, since=datetime(2025, 1, 1, tzinfo=UTC), until=datetime(2025, 2, 1, tzinfo=UTC)
    )

    assert report.rules == ()
    assert report.unknown_card_feedback == 0
    assert "Total          0      0         0           0            0             -" in format_report(
        report, period="x"
    )


def test_rules_sort_naturally() -> None:
    assert sorted(["R10", "R2b", "R1", "R6b", "R2", "R4a"], key=rule_order) == ["R1", "R2", "R2b", "R4a", "R6b", "R10"]


async def test_report_counts_cards_and_outcomes_per_week(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, make_feedback: FeedbackFactory
) -> None:
    await seed(store_engine, make_audit_event, make_feedback)

    report = await build_report(store_engine, since=SINCE, until=UNTIL)

    assert [
        (week.week.isoformat(), dict(week.shown), week.accepted, week.overridden, dict(week.reasons))
        for week in report.weeks
    ] == [
        ("2026-04-27", {}, 0, 0, {}),
        ("2026-05-04", {"R1": 1}, 0, 1, {"Already imaged": 1}),
        # c2's reason came without its display: the display c1 sent for the same code is shown
        (
            "2026-05-11",
            {"R1": 2, "R2": 2, "R2b": 1, "R10": 1},
            2,
            3,
            {"Already imaged": 1, "Not clinically relevant": 1, "no reason given": 1},
        ),
        ("2026-05-18", {"R1": 1}, 0, 0, {}),
        ("2026-05-25", {}, 0, 0, {}),
    ]
    assert sum(week.total_shown for week in report.weeks) == report.total.shown
    assert [week.override_rate for week in report.weeks] == [None, 1.0, 0.5, 0.0, None]


@pytest.mark.parametrize(
    ("system", "code", "display", "shown"),
    [
        (None, None, None, "no reason given"),
        ("urn:any", "x", "Sent display", "Sent display"),
        # a code of the service's own reasons, sent without its display: the card's display
        ("https://fhir.mscc-cds.org/CodeSystem/override-reasons", "patient-declined", None, "Patient declined"),
        ("urn:local", "patient-declined", None, "unlisted reason (code patient-declined)"),
    ],
)
def test_a_reason_is_shown_by_its_display(
    system: str | None, code: str | None, display: str | None, shown: str
) -> None:
    assert reason_display(system, code, display) == shown

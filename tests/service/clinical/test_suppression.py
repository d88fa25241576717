"""R9: recent imaging rewords or downgrades R1, suppresses R2 and R6b, mentions single-region MRI."""

from __future__ import annotations

import pytest

from service.clinical.policy import ClinicalPolicy
from tests.service.clinical.factories import (
    CHEST_XRAY,
    CORD_COMPRESSION,
    COUGH,
    DYSPNOEA,
    LUMBAR_RADICULOPATHY,
    MRI_LUMBAR,
    MRI_WHOLE_SPINE,
    NSCLC,
    SNOMED,
    THORACIC_BACK_PAIN,
    URINARY_RETENTION,
    ago,
    cards_of,
    condition,
    order,
    outcome,
    procedure,
    record,
    report,
    screen,
    study,
)


def r1_patient(*imaging: dict[str, object], onset_days: float = 2, **options: object) -> list[dict[str, object]]:
    return [condition(NSCLC), condition(URINARY_RETENTION, onset=ago(onset_days)), *imaging]


def r2_patient(*imaging: dict[str, object]) -> list[dict[str, object]]:
    return [condition(NSCLC), condition(THORACIC_BACK_PAIN, onset=ago(5)), *imaging]


# -- R1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("hours", "reworded"), [(24, True), (25, False)])
def test_r1_reworded_by_a_recent_whole_spine_order(hours: int, reworded: bool) -> None:
    result = screen(record(*r1_patient(order(MRI_WHOLE_SPINE, authored=ago(hours=hours)))))
    card = result.cards[0]
    assert card.indicator == "critical"
    assert ("whole-spine MRI requested" in card.summary) is reworded
    assert (card.suggestions is None) is reworded
    assert outcome(result, "R9") == ("fired" if reworded else "not_fired")


def test_reworded_r1_summary_keeps_the_immediate_actions() -> None:
    # §2.3: "MRI already requested …; confirm … within 24 h …; dexamethasone / coordinator still apply".
    result = screen(record(*r1_patient(order(MRI_WHOLE_SPINE, authored=ago(hours=2)))))
    summary = result.cards[0].summary
    assert "whole-spine MRI requested" in summary and "24 h" in summary
    assert "MSCC coordinator now" in summary and "dexamethasone 16 mg" in summary
    assert len(summary) < 140


def _recommended(detail: str | None) -> list[str]:
    """The card's "Recommended" lines, in order."""
    section = (detail or "").split("**Recommended**", 1)[1].split("\n\n**", 1)[0]
    return [line[2:] for line in section.splitlines() if line.startswith("- ")]


def test_reworded_r1_replaces_the_contact_mri_and_dexamethasone_actions_and_keeps_the_others() -> None:
    # R9 (docs/clinical/decision-table.md#r9-recent-imaging): the order rewords the MRI action, folds
    # "coordinator / dexamethasone still apply" into one line, and keeps the advice that does not depend on the scan.
    first = _recommended(screen(record(*r1_patient())).cards[0].detail)
    reworded = _recommended(screen(record(*r1_patient(order(MRI_WHOLE_SPINE, authored=ago(hours=2))))).cards[0].detail)
    kept = [line for line in first if line.startswith(("Immobilise", "If MRI is contraindicated"))]
    assert len(kept) == 2
    assert reworded[0].startswith("Whole-spine MRI already requested") and "within 24 hours" in reworded[0]
    assert "MSCC coordinator" in reworded[1] and "dexamethasone 16 mg" in reworded[1] and "still apply" in reworded[1]
    assert reworded[2:] == kept
    assert not (set(first) - set(kept)) & set(reworded)


@pytest.mark.parametrize(
    "where",
    ["hook draftOrders", "prefetch, status draft"],
)
def test_r1_is_not_reworded_by_a_draft_order(where: str) -> None:
    # §2.1/§2.3: only an *active* ServiceRequest is an order; a draft may never be signed.
    draft = order(MRI_WHOLE_SPINE, authored=ago(hours=1), status="draft")
    if where == "hook draftOrders":
        patient_record = record(*r1_patient(), drafts=[draft])
    else:
        patient_record = record(*r1_patient(draft))
    result = screen(patient_record)
    card = result.cards[0]
    assert cards_of(result) == [("R1", "critical")]
    assert "requested" not in card.summary and "contact the MSCC coordinator now" in card.summary
    assert card.suggestions is not None
    assert outcome(result, "R9") == "not_fired"


@pytest.mark.parametrize(
    "done",
    [
        study(MRI_WHOLE_SPINE, started=ago(hours=20)),
        report(MRI_WHOLE_SPINE, effective=ago(hours=70)),
        procedure(MRI_WHOLE_SPINE, performed=ago(hours=72)),
        order(MRI_WHOLE_SPINE, authored=ago(hours=30), status="completed"),
    ],
)
def test_r1_downgraded_after_a_whole_spine_mri_since_onset(done: dict[str, object]) -> None:
    result = screen(record(*r1_patient(done, onset_days=4)))
    assert cards_of(result) == [("R1", "info")]
    assert "review the result with the MSCC team" in result.cards[0].summary
    assert outcome(result, "R1") == "fired"


def test_r1_stays_critical_after_an_mri_before_the_onset_or_too_long_ago() -> None:
    before_onset = study(MRI_WHOLE_SPINE, started=ago(days=3))
    assert cards_of(screen(record(*r1_patient(before_onset, onset_days=2)))) == [("R1", "critical")]
    too_old = study(MRI_WHOLE_SPINE, started=ago(hours=73))
    assert cards_of(screen(record(*r1_patient(too_old, onset_days=10)))) == [("R1", "critical")]


# R1 is downgraded only by a scan performed after the *latest* onset, and the scan time is when it
# was performed, never a report's issued (docs/clinical/decision-table.md#r9-recent-imaging).


@pytest.mark.parametrize("second_sign", [LUMBAR_RADICULOPATHY, CORD_COMPRESSION])
def test_r1_stays_critical_when_a_sign_began_after_the_scan(second_sign: str) -> None:
    scan = study(MRI_WHOLE_SPINE, started=ago(hours=24))
    later = condition(second_sign, onset=ago(hours=12))
    result = screen(record(*r1_patient(scan, later, onset_days=4)))
    assert cards_of(result) == [("R1", "critical")]
    assert "contact the MSCC coordinator now" in result.cards[0].summary
    assert result.cards[0].suggestions is not None
    assert outcome(result, "R9") == "not_fired"


def test_r1_is_downgraded_by_a_scan_after_every_sign() -> None:
    scan = procedure(MRI_WHOLE_SPINE, performed=ago(hours=6))
    result = screen(record(*r1_patient(scan, condition(LUMBAR_RADICULOPATHY, onset=ago(hours=12)), onset_days=4)))
    assert cards_of(result) == [("R1", "info")]
    assert outcome(result, "R9") == "fired"


@pytest.mark.parametrize(
    ("effective", "downgraded"),
    [
        (None, False),  # no scan time: the report's issued is not one
        (ago(days=3), False),  # scanned before the onset, reported after it
        (ago(hours=20), True),  # scanned after the onset
    ],
)
def test_a_report_is_timed_by_its_scan_never_by_its_issued(effective: str | None, downgraded: bool) -> None:
    scanned = report(MRI_WHOLE_SPINE, effective=effective, issued=ago(hours=10))
    result = screen(record(*r1_patient(scanned, onset_days=2)))
    assert cards_of(result) == [("R1", "info" if downgraded else "critical")]


def test_r1_windows_are_policy() -> None:
    policy = ClinicalPolicy(r1_order_window_hours=48)
    result = screen(record(*r1_patient(order(MRI_WHOLE_SPINE, authored=ago(hours=40)))), policy=policy)
    assert "whole-spine MRI requested" in result.cards[0].summary


def test_single_region_mri_is_mentioned_and_suppresses_nothing() -> None:
    result = screen(record(*r1_patient(study(MRI_LUMBAR, started=ago(hours=5)))))
    assert cards_of(result) == [("R1", "critical")]
    assert "Whole spine recommended – single-region study on" in (result.cards[0].detail or "")


# -- R2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imaging", "suppressed"),
    [
        (procedure(MRI_WHOLE_SPINE, performed=ago(14)), True),
        (procedure(MRI_WHOLE_SPINE, performed=ago(days=14, minutes=1)), False),
        (order(MRI_WHOLE_SPINE, authored=ago(7)), True),
        (order(MRI_WHOLE_SPINE, authored=ago(days=7, minutes=1)), False),
        (order("411611000119102", authored=ago(1), system=SNOMED), True),
        (study(MRI_LUMBAR, started=ago(1)), False),
    ],
)
def test_r2_suppression_windows(imaging: dict[str, object], suppressed: bool) -> None:
    result = screen(record(*r2_patient(imaging)))
    assert cards_of(result) == ([] if suppressed else [("R2", "warning")])
    assert outcome(result, "R2") == ("suppressed" if suppressed else "fired")


def test_r2_date_only_study_suppresses_only_when_surely_recent() -> None:
    inside = procedure(MRI_WHOLE_SPINE, performed=(ago(13))[:10])
    assert cards_of(screen(record(*r2_patient(inside)))) == []
    month = procedure(MRI_WHOLE_SPINE, performed=ago(5)[:7])  # "2026-05": could be 31 days ago
    assert cards_of(screen(record(*r2_patient(month)))) == [("R2", "warning")]


@pytest.mark.parametrize("in_hook", [True, False])
def test_r2_is_not_suppressed_by_a_draft_order(in_hook: bool) -> None:
    # order-select / order-sign: the whole-spine MRI being drafted is not yet an active order,
    # and the card's other advice (MSCC coordinator within 24 h) must not disappear with it.
    draft = order(MRI_WHOLE_SPINE, authored=ago(hours=1), status="draft")
    patient_record = record(*r2_patient(), drafts=[draft]) if in_hook else record(*r2_patient(draft))
    result = screen(patient_record)
    assert cards_of(result) == [("R2", "warning")]
    assert outcome(result, "R2") == "fired"


def test_r2_order_without_a_date_does_not_suppress() -> None:
    assert cards_of(screen(record(*r2_patient(order(MRI_WHOLE_SPINE, authored=None))))) == [("R2", "warning")]


def test_unreadable_imaging_makes_r9_insufficient_and_the_card_says_so() -> None:
    result = screen(record(*r2_patient(), gaps=["imagingOrders"]))
    assert outcome(result, "R9") == "insufficient_data"
    assert "Could not read: imaging orders" in (result.cards[0].detail or "")


# -- R6b --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imaging", "suppressed"),
    [
        (report(CHEST_XRAY, effective=ago(42)), True),
        (report(CHEST_XRAY, effective=ago(43)), False),
        (order("24627-2", authored=ago(14)), True),  # CT chest
        (order(CHEST_XRAY, authored=ago(15)), False),
    ],
)
def test_r6b_suppression_windows(imaging: dict[str, object], suppressed: bool) -> None:
    resources = (condition(COUGH, onset=ago(5)), condition(DYSPNOEA, onset=ago(5)), imaging)
    result = screen(record(*resources, birth_date="1970-01-01"))
    assert cards_of(result) == ([] if suppressed else [("R6b", "warning")])


def test_r6b_is_not_suppressed_by_a_draft_chest_xray() -> None:
    resources = (condition(COUGH, onset=ago(5)), condition(DYSPNOEA, onset=ago(5)))
    draft = order(CHEST_XRAY, authored=ago(hours=1), status="draft")
    result = screen(record(*resources, birth_date="1970-01-01", drafts=[draft]))
    assert cards_of(result) == [("R6b", "warning")]

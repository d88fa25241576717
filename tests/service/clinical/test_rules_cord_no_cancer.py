"""R7: neurology and spinal pain without a known cancer."""

from __future__ import annotations

from service.clinical.policy import ClinicalPolicy
from tests.service.clinical.factories import (
    BACKACHE,
    BREAST_CANCER,
    NSCLC,
    URINARY_RETENTION,
    ago,
    cards_of,
    condition,
    outcome,
    record,
    screen,
)


def test_r7_fires_without_cancer() -> None:
    result = screen(record(condition(URINARY_RETENTION, onset=ago(2)), condition(BACKACHE, onset=ago(4))))
    assert cards_of(result) == [("R7", "critical")]
    assert "no lung cancer on record" in result.cards[0].summary


def test_r7_needs_spinal_pain_and_neurology() -> None:
    assert cards_of(screen(record(condition(URINARY_RETENTION, onset=ago(2))))) == []
    assert cards_of(screen(record(condition(BACKACHE, onset=ago(2))))) == []


def test_r7_yields_to_r1_when_cancer_is_known() -> None:
    resources = (condition(NSCLC), condition(URINARY_RETENTION, onset=ago(2)), condition(BACKACHE, onset=ago(3)))
    result = screen(record(*resources))
    assert cards_of(result) == [("R1", "critical")]
    assert outcome(result, "R7") == "not_fired"


def test_refuted_cancer_is_no_cancer() -> None:
    resources = (
        condition(NSCLC, verification="refuted"),
        condition(URINARY_RETENTION, onset=ago(2)),
        condition(BACKACHE, onset=ago(4)),
    )
    assert cards_of(screen(record(*resources))) == [("R7", "critical")]


def test_scope_any_turns_r7_into_r1() -> None:
    pain = condition(BACKACHE, clinical="active")
    resources = (condition(BREAST_CANCER), condition(URINARY_RETENTION, onset=ago(2)), pain)
    assert cards_of(screen(record(*resources))) == [("R7", "critical")]
    result = screen(record(*resources), policy=ClinicalPolicy(cancer_scope="any"))
    assert cards_of(result) == [("R1", "critical")]
    assert "Cancer: Condition" in (result.cards[0].detail or "")

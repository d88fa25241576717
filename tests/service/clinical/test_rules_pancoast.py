"""R5: Pancoast tumour or upper-lobe lung cancer with signs of apical spread."""

from __future__ import annotations

import pytest

from service.clinical.policy import ClinicalPolicy
from tests.service.clinical.factories import (
    ICD10CM,
    NSCLC,
    PANCOAST,
    SHOULDER_PAIN,
    THORACIC_BACK_PAIN,
    UPPER_LOBE_CANCER,
    URINARY_RETENTION,
    ago,
    cards_of,
    condition,
    outcome,
    record,
    screen,
)


@pytest.mark.parametrize(
    ("disease", "sign"),
    [
        (condition(PANCOAST), condition("G90.2", ICD10CM, onset=ago(10))),  # Horner
        (condition(UPPER_LOBE_CANCER), condition(SHOULDER_PAIN, onset=ago(30))),
        (condition("C34.11", ICD10CM), condition("G54.0", ICD10CM, onset=ago(60))),
    ],
)
def test_r5_fires(disease: dict[str, object], sign: dict[str, object]) -> None:
    result = screen(record(disease, sign))
    assert cards_of(result) == [("R5", "warning")]
    assert "within 1 week" in result.cards[0].summary


def test_r5_needs_a_sign_and_an_upper_lobe() -> None:
    assert cards_of(screen(record(condition(PANCOAST)))) == []
    assert cards_of(screen(record(condition(NSCLC), condition(SHOULDER_PAIN, onset=ago(3))))) == []


@pytest.mark.parametrize(("days", "fires"), [(90, True), (91, False)])
def test_r5_sign_window(days: int, fires: bool) -> None:
    result = screen(record(condition(PANCOAST), condition(SHOULDER_PAIN, onset=ago(days))))
    assert (outcome(result, "R5") == "fired") is fires


def test_r5_time_frame_is_policy() -> None:
    policy = ClinicalPolicy(pancoast_imaging_days=3)
    result = screen(record(condition(PANCOAST), condition(SHOULDER_PAIN, onset=ago(3))), policy=policy)
    assert "within 3 days" in result.cards[0].summary


def test_r1_supersedes_r5() -> None:
    result = screen(
        record(condition(PANCOAST), condition(SHOULDER_PAIN, onset=ago(3)), condition(URINARY_RETENTION, onset=ago(1)))
    )
    assert cards_of(result) == [("R1", "critical")]
    assert outcome(result, "R5") == "suppressed"
    assert "R5 Pancoast tumour or brachial plexopathy" in (result.cards[0].detail or "")


def test_r5_shows_beside_r2_and_asks_for_whole_spine_imaging() -> None:
    result = screen(
        record(condition(PANCOAST), condition(SHOULDER_PAIN, onset=ago(3)), condition(THORACIC_BACK_PAIN, onset=ago(3)))
    )
    assert sorted(cards_of(result)) == [("R2", "warning"), ("R5", "warning")]
    pancoast = next(card for card in result.cards if card.source.topic and card.source.topic.code == "R5")
    assert "whole-spine MRI as well" in (pancoast.detail or "")

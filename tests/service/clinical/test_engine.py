"""The engine: precedence, families, suppression mentions, outcomes for the audit, robustness."""

from __future__ import annotations

import itertools
import uuid

import pytest

from service.clinical.engine import ClinicalScreener, new_uuid4
from service.clinical.outcome import Screener
from service.clinical.policy import ClinicalPolicy
from service.clinical.rules import RULES
from tests.service.clinical.factories import (
    AT,
    CALCIUM_MOLAR,
    CHEST_XRAY,
    COUGH,
    DYSPNOEA,
    HAEMOPTYSIS,
    MRI_WHOLE_SPINE,
    NSCLC,
    THORACIC_BACK_PAIN,
    URINARY_RETENTION,
    ago,
    cards_of,
    condition,
    custom_library,
    library,
    observation,
    outcome,
    record,
    report,
    screen,
    study,
)


def test_every_rule_has_an_outcome_in_table_order() -> None:
    result = screen(record())
    assert [(item.rule_id, item.rule_version) for item in result.rules] == [(rule.id, rule.version) for rule in RULES]
    assert {item.result for item in result.rules} == {"not_fired"}
    assert outcome(result, "R3") == "not_fired"


def test_the_screener_satisfies_the_protocol() -> None:
    screener: Screener = ClinicalScreener(library(), ClinicalPolicy())
    assert screener.screen(record(), AT).cards == []


def test_families_are_independent_and_cards_are_ordered_by_precedence() -> None:
    resources = (
        condition(NSCLC),
        condition(URINARY_RETENTION, onset=ago(1)),
        observation(CALCIUM_MOLAR, value=3.2, unit="mmol/L", effective=ago(1)),
    )
    assert cards_of(screen(record(*resources))) == [("R1", "critical"), ("R4b", "warning")]


def test_a_suppressed_rule_is_mentioned_on_its_family_card() -> None:
    resources = (
        condition(HAEMOPTYSIS, onset=ago(2)),
        condition(COUGH, onset=ago(2)),
        condition(DYSPNOEA, onset=ago(2)),
        report(CHEST_XRAY, effective=ago(3)),
    )
    result = screen(record(*resources, birth_date="1970-01-01"))
    assert cards_of(result) == [("R6a", "warning")]
    assert outcome(result, "R6b") == "suppressed"
    assert "R6b not shown (recent imaging, R9)" in (result.cards[0].detail or "")


def test_new_uuid4_gives_distinct_version_4_uuids_in_canonical_form() -> None:
    made = [new_uuid4() for _ in range(500)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_uuids_come_from_the_factory() -> None:
    counter = itertools.count()
    screener = ClinicalScreener(library(), ClinicalPolicy(), new_uuid=lambda: f"id-{next(counter)}")
    result = screener.screen(record(condition(NSCLC), condition(URINARY_RETENTION, onset=ago(1))), AT)
    card = result.cards[0]
    assert card.suggestions is not None
    assert {card.uuid, card.suggestions[0].uuid} == {"id-0", "id-1"}


def test_notes_are_passed_through() -> None:
    result = screen(record(condition(NSCLC, onset="2024-01-01T10:00:00")))
    assert result.notes == ("Condition: date-time without UTC offset read as UTC",)


ALL_OPTIONAL = [
    "pain-feature-night",
    "mri-contraindicated",
    "mri-spine-whole",
    "mri-spine-region",
    "chest-imaging",
    "chest-xray",
    "ct-spine",
    "mri-brachial-plexus",
    "ng12-cough",
    "smoking-status-ever",
    "pancoast-signs",
    "albumin",
]


@pytest.mark.parametrize("absent", [*ALL_OPTIONAL, "mscc-neuro-signs", "lung-cancer-primary"])
def test_an_absent_value_set_never_raises(absent: str) -> None:
    resources = (
        condition(NSCLC),
        condition(URINARY_RETENTION, onset=ago(1)),
        condition(THORACIC_BACK_PAIN, onset=ago(1)),
        report(CHEST_XRAY, effective=ago(3)),
    )
    result = screen(record(*resources), valuesets=custom_library(without=[absent]))
    assert len(result.rules) == len(RULES)


def test_without_the_neuro_value_set_r1_is_insufficient_not_silent() -> None:
    resources = (condition(NSCLC), condition(URINARY_RETENTION, onset=ago(1)), condition(THORACIC_BACK_PAIN))
    result = screen(record(*resources), valuesets=custom_library(without=["mscc-neuro-signs", "radicular-pain"]))
    assert outcome(result, "R1") == "insufficient_data"


def test_without_an_order_code_the_card_has_no_suggestion() -> None:
    resources = (condition(NSCLC), condition(URINARY_RETENTION, onset=ago(1)))
    result = screen(record(*resources), valuesets=custom_library(without=["mri-spine-whole"]))
    assert cards_of(result) == [("R1", "critical")]
    assert result.cards[0].suggestions is None and result.cards[0].selectionBehavior is None


def test_a_folded_card_keeps_its_urgency() -> None:
    # R1 is downgraded to info by a whole-spine MRI done after the onset; the Pancoast
    # warning folded into it must not be lost to an info card.
    resources = (
        condition("254638002"),  # Pancoast tumour
        condition("45326000", onset=ago(5)),  # shoulder pain
        condition(URINARY_RETENTION, onset=ago(3)),
        study(MRI_WHOLE_SPINE, started=ago(hours=2)),
    )
    result = screen(record(*resources))
    assert cards_of(result) == [("R1", "warning")]
    assert outcome(result, "R5") == "suppressed"
    assert "review the result" in result.cards[0].summary

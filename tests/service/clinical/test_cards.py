"""Card shape: summary, indicator, source, links, override reasons, R4-valid suggestions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_hooks.models import Card
from service.clinical.cards import OVERRIDE_SYSTEM, RULES_SYSTEM
from service.clinical.policy import ClinicalPolicy
from service.clinical.rules import RULES_BY_ID
from tests.service.clinical.factories import (
    CALCIUM_CORRECTED,
    CALCIUM_MOLAR,
    COUGH,
    DYSPNOEA,
    HAEMOPTYSIS,
    LOW_BACK_PAIN,
    MRI_WHOLE_SPINE,
    NSCLC,
    PANCOAST,
    PATIENT_ID,
    SHOULDER_PAIN,
    THORACIC_BACK_PAIN,
    THROMBOCYTOSIS,
    URINARY_RETENTION,
    ago,
    condition,
    observation,
    order,
    record,
    screen,
    study,
)

# One record per card variant, including the reworded ones with dynamic text.
VARIANTS = {
    "R1": record(condition(NSCLC), condition(URINARY_RETENTION, onset=ago(1))),
    "R1 reworded": record(
        condition(NSCLC), condition(URINARY_RETENTION, onset=ago(1)), order(MRI_WHOLE_SPINE, authored=ago(hours=2))
    ),
    "R1 downgraded": record(
        condition(NSCLC), condition(URINARY_RETENTION, onset=ago(3)), study(MRI_WHOLE_SPINE, started=ago(hours=2))
    ),
    "R2": record(condition(NSCLC), condition(THORACIC_BACK_PAIN, onset=ago(3))),
    "R2b": record(condition(NSCLC), condition(LOW_BACK_PAIN, onset=ago(3))),
    "R4a": record(observation(CALCIUM_MOLAR, value=3.6, unit="mmol/L", effective=ago(1))),
    "R4b": record(observation(CALCIUM_CORRECTED, value=3.2, unit="mmol/L", effective=ago(1))),
    "R4c": record(observation(CALCIUM_MOLAR, value=2.7, unit="mmol/L", effective=ago(1))),
    "R5": record(condition(PANCOAST), condition(SHOULDER_PAIN, onset=ago(3))),
    "R6a": record(condition(HAEMOPTYSIS, onset=ago(3)), birth_date="1950"),
    "R6b": record(condition(COUGH, onset=ago(3)), condition(DYSPNOEA, onset=ago(3)), birth_date="1950"),
    "R6c": record(condition(THROMBOCYTOSIS, onset=ago(3)), birth_date="1950"),
    "R7": record(condition(URINARY_RETENTION, onset=ago(1)), condition(LOW_BACK_PAIN, onset=ago(3))),
}


def all_cards() -> Iterator[tuple[str, Card]]:
    for name, patient_record in VARIANTS.items():
        for policy in (ClinicalPolicy(), ClinicalPolicy(cancer_scope="any", pancoast_imaging_days=10)):
            for card in screen(patient_record, policy=policy).cards:
                yield name, card


@pytest.mark.parametrize(("name", "card"), list(all_cards()))
def test_card_shape(name: str, card: Card) -> None:
    assert len(card.summary) < 140
    assert card.uuid is not None and uuid.UUID(card.uuid)
    topic = card.source.topic
    assert topic is not None and topic.system == RULES_SYSTEM
    rule = RULES_BY_ID[topic.code]
    assert name.split()[0] == topic.code
    assert topic.display == rule.title
    assert card.source.label == rule.citations[0].label
    assert card.indicator == ("info" if name == "R1 downgraded" else rule.indicator)
    assert card.links is not None and all(link.type == "absolute" for link in card.links)
    assert card.overrideReasons is not None
    assert [reason.code for reason in card.overrideReasons] == [
        "already-imaged",
        "patient-declined",
        "not-clinically-indicated",
        "end-of-life-care",
        "other",
    ]
    assert all(reason.system == OVERRIDE_SYSTEM and reason.display for reason in card.overrideReasons)
    assert card.detail and "**Why**" in card.detail and "**Recommended**" in card.detail
    assert f"_Rule {rule.id} (" in card.detail
    Card.model_validate(card.to_json())


def test_the_r1_source_names_the_guideline() -> None:
    card = screen(VARIANTS["R1"]).cards[0]
    assert card.source.label == "NICE NG234 (2023) rec 1.5.2"
    assert str(card.source.url) == "https://www.nice.org.uk/guidance/ng234/chapter/Recommendations"


@pytest.mark.parametrize(
    ("name", "priority"), [("R1", "stat"), ("R2", "urgent"), ("R5", "urgent"), ("R6b", "urgent"), ("R7", "stat")]
)
def test_suggestion_is_a_valid_r4_draft_order(name: str, priority: str) -> None:
    card = screen(VARIANTS[name]).cards[0]
    assert card.selectionBehavior == "at-most-one"
    assert card.suggestions is not None and len(card.suggestions) == 1
    suggestion = card.suggestions[0]
    assert suggestion.isRecommended is True and suggestion.uuid and uuid.UUID(suggestion.uuid)
    assert suggestion.actions is not None and len(suggestion.actions) == 1
    action = suggestion.actions[0]
    assert action.type == "create" and action.resource is not None
    request = ServiceRequest.model_validate(action.resource)
    assert (request.status, request.intent, request.priority) == ("draft", "order", priority)
    assert request.subject.reference == f"Patient/{PATIENT_ID}"
    systems = [coding.system for coding in request.code.coding]
    assert systems == ["http://loinc.org", "http://snomed.info/sct"]
    assert all(coding.display for coding in request.code.coding)
    references = [reason.reference for reason in request.reasonReference or []]
    assert references and all(reference.split("/")[0] in ("Condition", "Observation") for reference in references)


def test_whole_spine_mri_codes() -> None:
    resource = screen(VARIANTS["R1"]).cards[0].suggestions[0].actions[0].resource  # type: ignore[index]
    assert [coding["code"] for coding in resource["code"]["coding"]] == ["30854-4", "411611000119102"]


def test_cards_without_an_order_have_no_suggestions() -> None:
    for name in ("R2b", "R4a", "R6a", "R1 reworded", "R1 downgraded"):
        card = screen(VARIANTS[name]).cards[0]
        assert card.suggestions is None and card.selectionBehavior is None, name


def test_detail_lists_evidence_with_dates_and_values() -> None:
    detail = screen(VARIANTS["R4b"]).cards[0].detail or ""
    assert "Corrected calcium (reported): Observation" in detail
    assert "3.2 mmol/L" in detail
    detail = screen(VARIANTS["R1"]).cards[0].detail or ""
    assert "Neurological symptom or sign: Condition “Retention of urine” (onset " in detail


def test_detail_caps_long_evidence_lists() -> None:
    signs = [condition(URINARY_RETENTION, onset=ago(1)) for _ in range(5)]
    detail = screen(record(condition(NSCLC), *signs)).cards[0].detail or ""
    assert detail.count("Retention of urine") == 3
    assert "Neurological symptom or sign: 2 more not listed" in detail


def test_markdown_in_displays_is_escaped() -> None:
    odd = condition(NSCLC)
    odd["code"]["coding"][0]["display"] = "*bold* _x_ <script>"
    detail = screen(record(odd, condition(URINARY_RETENTION, onset=ago(1)))).cards[0].detail or ""
    assert r"\*bold\* \_x\_ \<script\>" in detail


def test_every_markdown_character_is_escaped_once() -> None:
    odd = condition(NSCLC)
    odd["code"]["coding"][0]["display"] = r"a\b `c` [d](e) <f> *g* _h_ \*"
    detail = screen(record(odd, condition(URINARY_RETENTION, onset=ago(1)))).cards[0].detail or ""
    assert r"“a\\b \`c\` \[d\](e) \<f\> \*g\* \_h\_ \\\*”" in detail

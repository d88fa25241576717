"""R1, R2, R2b and R3: MSCC and spinal metastases in a person with cancer (decision table §2.2)."""

from __future__ import annotations

import pytest

from service.clinical.policy import ClinicalPolicy
from service.clinical.rules import RULES_BY_ID
from tests.service.clinical.factories import (
    BACKACHE,
    BONE_METASTASIS,
    CORD_COMPRESSION,
    ICD10,
    ICD10CM,
    LOW_BACK_PAIN,
    LUMBAR_RADICULOPATHY,
    NECK_PAIN,
    NSCLC,
    PAIN_SCORE,
    THORACIC_BACK_PAIN,
    URINARY_RETENTION,
    ago,
    cards_of,
    condition,
    custom_library,
    observation,
    outcome,
    record,
    screen,
)


def lung_cancer() -> dict[str, object]:
    return condition(NSCLC, onset="2024-02-01", clinical="active")


# -- R1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sign",
    [
        condition(URINARY_RETENTION, onset=ago(2)),
        condition(LUMBAR_RADICULOPATHY, onset=ago(1)),  # radicular pain is neurological (box 1)
        condition("R26.2", ICD10CM, recorded=ago(3)),  # difficulty walking, recorded only
        observation(URINARY_RETENTION, "http://snomed.info/sct", effective=ago(1)),
        condition(CORD_COMPRESSION, onset=ago(20)),  # coded cord compression within 30 days
        condition("G95.20", ICD10CM, recorded=ago(29)),
    ],
)
def test_r1_cancer_with_neurology_or_cord_compression(sign: dict[str, object]) -> None:
    result = screen(record(lung_cancer(), sign))
    assert cards_of(result) == [("R1", "critical")]
    assert outcome(result, "R1") == "fired"


def test_r1_does_not_need_spinal_pain_and_resolved_cancer_counts() -> None:
    result = screen(record(condition(NSCLC, clinical="resolved", abated="2025-01-01"), condition(URINARY_RETENTION)))
    # no onset, no recorded date: the sign's newness cannot be shown
    assert cards_of(result) == []
    result = screen(record(condition(NSCLC, clinical="remission"), condition(URINARY_RETENTION, onset=ago(1))))
    assert cards_of(result) == [("R1", "critical")]


@pytest.mark.parametrize(("days", "fires"), [(13, True), (14, True), (15, False)])
def test_r1_neuro_window_edge(days: int, fires: bool) -> None:
    result = screen(record(lung_cancer(), condition(URINARY_RETENTION, onset=ago(days))))
    assert (cards_of(result) == [("R1", "critical")]) is fires


def test_r1_neuro_window_is_policy() -> None:
    policy = ClinicalPolicy(neuro_window_days=30)
    result = screen(record(lung_cancer(), condition(URINARY_RETENTION, onset=ago(20))), policy=policy)
    assert cards_of(result) == [("R1", "critical")]


@pytest.mark.parametrize(("days", "fires"), [(30, True), (31, False)])
def test_r1_cord_compression_window_edge(days: int, fires: bool) -> None:
    result = screen(record(lung_cancer(), condition(CORD_COMPRESSION, onset=ago(days))))
    assert (outcome(result, "R1") == "fired") is fires


def test_r1_resolved_or_abated_signs_do_not_count() -> None:
    resolved = condition(URINARY_RETENTION, onset=ago(3), clinical="resolved")
    abated = condition(URINARY_RETENTION, onset=ago(3), abated=ago(1))
    assert cards_of(screen(record(lung_cancer(), resolved, abated))) == []


def test_r1_needs_cancer() -> None:
    result = screen(record(condition(URINARY_RETENTION, onset=ago(2))))
    assert outcome(result, "R1") == "not_fired"


def test_r1_unreadable_findings_is_insufficient_data() -> None:
    result = screen(record(lung_cancer(), gaps=["findings"]))
    assert outcome(result, "R1") == "insufficient_data"
    assert cards_of(result) == []


def test_who_icd10_m62_81_is_not_weakness() -> None:
    result = screen(record(lung_cancer(), condition("M62.81", ICD10, onset=ago(1))))
    assert outcome(result, "R1") == "not_fired"


# -- R2 / R2b ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pain",
    [
        [condition(THORACIC_BACK_PAIN, onset=ago(5))],
        [condition(NECK_PAIN, onset=ago(5))],
        [condition("M54.2", ICD10CM, onset=ago(5))],
        [condition(LOW_BACK_PAIN, onset=ago(5)), condition(BONE_METASTASIS, onset="2025-01-01")],
        [condition(LOW_BACK_PAIN, onset=ago(5)), observation(PAIN_SCORE, value=7, unit="{score}", effective=ago(1))],
    ],
)
def test_r2_pain_with_a_feature(pain: list[dict[str, object]]) -> None:
    result = screen(record(lung_cancer(), *pain))
    assert cards_of(result) == [("R2", "warning")]
    assert outcome(result, "R2b") == "not_fired"


@pytest.mark.parametrize(
    "pain",
    [
        [condition(BACKACHE, onset=ago(5))],
        [condition(LOW_BACK_PAIN, onset=ago(5)), observation(PAIN_SCORE, value=6, unit="{score}", effective=ago(1))],
        [condition("M54.5", ICD10CM, onset=ago(5))],  # legacy header code still matches
    ],
)
def test_r2b_pain_without_features(pain: list[dict[str, object]]) -> None:
    result = screen(record(lung_cancer(), *pain))
    assert cards_of(result) == [("R2b", "info")]
    assert outcome(result, "R2") == "not_fired"


def test_severe_score_threshold_is_policy() -> None:
    pain = [condition(LOW_BACK_PAIN, onset=ago(5)), observation(PAIN_SCORE, value=6, unit="{score}", effective=ago(1))]
    assert cards_of(screen(record(lung_cancer(), *pain), policy=ClinicalPolicy(severe_pain_score=6))) == [
        ("R2", "warning")
    ]


@pytest.mark.parametrize(("days", "card"), [(90, ("R2b", "info")), (91, None)])
def test_spinal_pain_window_for_inactive_pain(days: int, card: tuple[str, str] | None) -> None:
    pain = observation(BACKACHE, "http://snomed.info/sct", effective=ago(days))
    assert cards_of(screen(record(lung_cancer(), pain))) == ([card] if card else [])


@pytest.mark.parametrize(
    ("clinical", "counts"),
    # FHIR condition-clinical: active and its two returns (recurrence, relapse) are ongoing pain;
    # inactive, remission and resolved are not, however recently the pain began.
    [("active", True), ("recurrence", True), ("relapse", True), ("inactive", False), ("remission", False)],
)
def test_ongoing_pain_counts_whatever_its_onset(clinical: str, counts: bool) -> None:
    pain = condition(BACKACHE, onset="2020-01-01", clinical=clinical)
    assert cards_of(screen(record(lung_cancer(), pain))) == ([("R2b", "info")] if counts else [])


def test_r2_insufficient_and_r2b_shown_when_features_cannot_be_read() -> None:
    result = screen(record(lung_cancer(), condition(LOW_BACK_PAIN, onset=ago(5)), gaps=["labs", "findings"]))
    assert outcome(result, "R2") == "insufficient_data"
    assert cards_of(result) == [("R2b", "info")]
    detail = result.cards[0].detail or ""
    assert "Spinal pain features: could not read laboratory results" in detail
    assert "Could not read: symptoms and signs recorded as observations" in detail


def test_r1_supersedes_r2_and_folds_it() -> None:
    result = screen(
        record(lung_cancer(), condition(URINARY_RETENTION, onset=ago(1)), condition(THORACIC_BACK_PAIN, onset=ago(3)))
    )
    assert cards_of(result) == [("R1", "critical")]
    assert outcome(result, "R2") == "suppressed"
    assert "Also met – R2 Spinal metastases suspected" in (result.cards[0].detail or "")


# -- citations (§2.2 "Citation" column; URLs from §1) -------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "label", "url"),
    [
        # R1: "NG234 1.3.2, 1.5.2, 1.8.1; QS56 st. 3–4; CG75; …"
        ("R1", "NICE QS56 (2023) statement 4", "https://www.nice.org.uk/guidance/qs56"),
        # R2: "…; US: ACR LBP var. 7, ACP 2011"
        (
            "R2",
            "ACR Appropriateness Criteria Low Back Pain (2021) variant 7",
            "https://acsearch.acr.org/list/GetAppendix?PanelName=Neurologic&TopicId=141",
        ),
        # R3: "NG234 1.5.x (S); Christie pathway"
        (
            "R3",
            "The Christie MSCC pathway (2023)",
            "https://www.christie.nhs.uk/patients-and-visitors/services/metastatic-spinal-cord-compression-mscc/"
            "information-about-mscc-for-healthcare-professionals/identifying-patients-with-suspected-mscc",
        ),
    ],
)
def test_rules_cite_every_anchor_of_the_decision_table(rule_id: str, label: str, url: str) -> None:
    citations = {citation.label: citation for citation in RULES_BY_ID[rule_id].citations}
    assert label in citations
    assert citations[label].url == url


def test_r2_card_links_to_the_us_anchor() -> None:
    card = screen(record(lung_cancer(), condition(THORACIC_BACK_PAIN, onset=ago(3)))).cards[0]
    assert card.links is not None
    assert "https://acsearch.acr.org/list/GetAppendix?PanelName=Neurologic&TopicId=141" in {
        str(link.url) for link in card.links
    }


# -- R3 ---------------------------------------------------------------------------------


def test_r3_is_insufficient_without_a_contraindication_code_list() -> None:
    result = screen(record(lung_cancer(), condition(URINARY_RETENTION, onset=ago(1))))
    assert outcome(result, "R3") == "insufficient_data"
    assert "MRI contraindication: no code list available, not checked" in (result.cards[0].detail or "")
    assert outcome(screen(record(lung_cancer())), "R3") == "not_fired"


def test_r3_switches_to_ct_when_a_contraindication_is_coded() -> None:
    # Pretend the MRI contraindication value set holds "cardiac pacemaker in situ" (441509002).
    with_contraindications = custom_library(extra={"mri-contraindicated": [("http://snomed.info/sct", "441509002")]})
    result = screen(
        record(lung_cancer(), condition(URINARY_RETENTION, onset=ago(1)), condition("441509002")),
        valuesets=with_contraindications,
    )
    assert outcome(result, "R3") == "fired"
    card = result.cards[0]
    assert card.indicator == "critical" and "CT whole spine" in card.summary
    assert card.suggestions is not None
    resource = card.suggestions[0].actions[0].resource if card.suggestions[0].actions else None
    assert resource is not None
    assert resource["code"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "429875006", "display": "Computed tomography of whole spine"}
    ]

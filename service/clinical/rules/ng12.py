"""Suspected lung cancer in people without one (NICE NG12): R6a, R6b, R6c, and R8 (spinal line).

Evidence: NICE NG12 recommendations 1.1.1-1.1.3
https://www.nice.org.uk/guidance/ng12/chapter/Recommendations-organised-by-site-of-cancer
(docs/clinical/evidence.md#nice-ng12-suspected-lung-cancer). NG12 is for undiagnosed cancer, so
none of these fires when a cancer is known. "Ever smoked" is not defined by NG12: any current or former smoking
status; an unknown status counts as not ever-smoked and the card says so.
"""

from __future__ import annotations

from dataclasses import replace

from service.clinical.recordparts import IMAGING_PARTS, RecordPart
from service.clinical.rules.base import (
    Citation,
    Fact,
    Indicator,
    Plan,
    RuleSpec,
    Truth,
    Verdict,
    all_of,
    any_of,
    negate,
)
from service.clinical.rules.citations import NG12_1_1_1, NG12_1_1_2, NG12_1_1_3, NG234_NO_CANCER
from service.clinical.rules.common import RULES_DATE, RULES_VERSION, chest_xray
from service.clinical.rules.facts import CANCER_ANY_GROUPS, NG12_SYMPTOMS, SPINAL_PAIN_GROUPS, Given

__all__ = [
    "R6A",
    "R6B",
    "R6C",
    "R8",
    "chest_xray_consider",
    "chest_xray_urgent",
    "haemoptysis_referral",
    "merge_spinal_line",
    "spinal_red_flags",
]

_UNEXPLAINED = "NG12 symptoms count when unexplained: check for another cause."
#: age, coded and observed symptoms, smoking status and body weight
_PATIENT_DATA = (
    RecordPart.DEMOGRAPHICS,
    RecordPart.CONDITIONS,
    RecordPart.OBSERVED_FINDINGS,
    RecordPart.LAB_RESULTS,
)


def _spec(
    rule_id: str,
    title: str,
    description: str,
    logic: str,
    *,
    strength: str,
    indicator: Indicator | None,
    rank: int,
    superseded_by: tuple[str, ...],
    citations: tuple[Citation, ...],
    valuesets: tuple[str, ...],
    reads: tuple[RecordPart, ...] = _PATIENT_DATA,
    health_status_inputs: tuple[str, ...] = (),
) -> RuleSpec:
    # Every NG12 rule reads the age (40 and over), hence the date of birth (HTI-1 attribute 11).
    return RuleSpec(
        id=rule_id,
        version=RULES_VERSION,
        date=RULES_DATE,
        title=title,
        description=description,
        logic=logic,
        strength=strength,
        indicator=indicator,
        family="ng12",
        rank=rank,
        superseded_by=superseded_by,
        citations=citations,
        valuesets=valuesets,
        reads=reads,
        uses_birth_date=True,
        health_status_inputs=health_status_inputs,
    )


R6A = _spec(
    "R6a",
    "NG12: haemoptysis, suspected lung cancer referral",
    "No cancer on record, aged 40 or over, with recent haemoptysis.",
    "not LUNG_CA and AGE >= 40 and haemoptysis",
    strength="Strong",
    indicator="warning",
    rank=70,
    superseded_by=(),
    citations=(NG12_1_1_1,),
    valuesets=(*CANCER_ANY_GROUPS, "haemoptysis"),
)
R6B = _spec(
    "R6b",
    "NG12: urgent chest X-ray",
    "No cancer on record, aged 40 or over, with 2 or more recent NG12 symptoms (cough, fatigue, shortness of "
    "breath, chest pain, weight loss, appetite loss), or 1 or more in a person who has ever smoked. Weight loss "
    "is coded, or the latest body weight is at least 5 % (team policy) below the heaviest in the symptom window.",
    "not LUNG_CA and AGE >= 40 and (NG12_SX >= 2 or (EVER_SMOKED and NG12_SX >= 1))",
    strength="Strong",
    indicator="warning",
    rank=71,
    superseded_by=("R6a",),
    citations=(NG12_1_1_2,),
    valuesets=(
        *CANCER_ANY_GROUPS,
        *NG12_SYMPTOMS,
        "smoking-status-code",
        "smoking-status-ever",
        "smoking-pack-years",
        "body-weight",
        "chest-imaging",
    ),
    # R9 reads recent chest imaging from every part that can hold it, procedures included.
    reads=(*_PATIENT_DATA, *IMAGING_PARTS),
    health_status_inputs=("smoking status (LOINC 72166-2)", "pack-years (SNOMED 401201003, 782516008)"),
)
R6C = _spec(
    "R6c",
    "NG12: consider an urgent chest X-ray",
    "No cancer on record, aged 40 or over, with a recent NG12 1.1.3 finding: recurrent chest infection, finger "
    "clubbing, supraclavicular or persistent cervical lymphadenopathy, chest signs, thrombocytosis.",
    "not LUNG_CA and AGE >= 40 and NG12 1.1.3 finding",
    strength="Moderate ('consider')",
    indicator="info",
    rank=72,
    superseded_by=("R6a", "R6b"),
    citations=(NG12_1_1_3,),
    valuesets=(*CANCER_ANY_GROUPS, "ng12-consider-cxr"),
)
R8 = _spec(
    "R8",
    "Spinal pain with red flags in suspected lung cancer",
    "No cancer on record, spinal pain with a feature of spinal metastases, and R6a or R6b fires: a line on the "
    "NG12 card to consider spinal metastases.",
    "not LUNG_CA and SPINAL_PAIN and PAIN_FEATURE and (R6a or R6b)",
    strength="Weak",
    indicator=None,
    rank=70,
    superseded_by=(),
    citations=(NG234_NO_CANCER, NG12_1_1_1, NG12_1_1_2),
    valuesets=(*SPINAL_PAIN_GROUPS, "pain-severity"),
)


def _at_least(symptoms: dict[str, Fact], count: int) -> Truth:
    present = sum(1 for fact in symptoms.values() if fact.truth is True)
    possible = present + sum(1 for fact in symptoms.values() if fact.truth is None)
    if present >= count:
        return True
    return None if possible >= count else False


def _context(given: Given) -> tuple[str, ...]:
    age = given.snapshot.age
    return (f"Age {age.display()} at this check.",) if age is not None else ()


def _missing(given: Given) -> tuple[str, ...]:
    # Smoking status matters when it alone decides R6b: one NG12 symptom, not two.
    symptoms = given.facts.ng12_sx
    smoking = given.facts.ever_smoked
    deciding = _at_least(symptoms, 1) is True and _at_least(symptoms, 2) is not True
    return smoking.unknown if deciding and smoking.truth is None else ()


def haemoptysis_referral(given: Given) -> Verdict:
    """R6a - NICE NG12 rec 1.1.1: https://www.nice.org.uk/guidance/ng12/chapter/Recommendations-organised-by-site-of-cancer"""
    facts = given.facts
    truth = all_of(negate(facts.lung_ca.truth), facts.age_40.truth, facts.haemoptysis.truth)
    if truth is not True:
        return Verdict(R6A, truth)
    plan = Plan(
        rule=R6A,
        summary="Haemoptysis at 40 or over: refer urgently on the suspected lung cancer pathway (NG12 1.1.1)",
        indicator="warning",
        actions=("Refer using a suspected cancer pathway referral for lung cancer (NG12 1.1.1).", _UNEXPLAINED),
        evidence=facts.haemoptysis.evidence,
        context=_context(given),
        missing=_missing(given),
    )
    return Verdict(R6A, True, plan)


def chest_xray_urgent(given: Given) -> Verdict:
    """R6b - NICE NG12 rec 1.1.2: https://www.nice.org.uk/guidance/ng12/chapter/Recommendations-organised-by-site-of-cancer"""
    facts = given.facts
    symptoms = facts.ng12_sx
    # Unknown smoking counts as never (docs/clinical/code-lists.md#symptoms-and-smoking); the rule then reports
    # insufficient data rather than a plain "not fired" when it is the deciding fact.
    criteria = any_of(_at_least(symptoms, 2), all_of(facts.ever_smoked.truth, _at_least(symptoms, 1)))
    truth = all_of(negate(facts.lung_ca.truth), facts.age_40.truth, criteria)
    if truth is not True:
        return Verdict(R6B, truth)
    evidence = tuple(item for fact in symptoms.values() for item in fact.evidence)
    plan = Plan(
        rule=R6B,
        summary="Offer an urgent direct-access chest X-ray (within 2 weeks) to assess for lung cancer (NG12 1.1.2)",
        indicator="warning",
        actions=(
            "Offer an urgent direct-access chest X-ray, to be performed within 2 weeks (NG12 1.1.2).",
            _UNEXPLAINED,
        ),
        evidence=(*evidence, *facts.ever_smoked.evidence),
        context=_context(given),
        missing=_missing(given),
        order=chest_xray("urgent", "Suspected lung cancer (NICE NG12 1.1.2): urgent direct access, within 2 weeks."),
    )
    return Verdict(R6B, True, plan)


def chest_xray_consider(given: Given) -> Verdict:
    """R6c - NICE NG12 rec 1.1.3: https://www.nice.org.uk/guidance/ng12/chapter/Recommendations-organised-by-site-of-cancer"""
    facts = given.facts
    truth = all_of(negate(facts.lung_ca.truth), facts.age_40.truth, facts.ng12_consider.truth)
    if truth is not True:
        return Verdict(R6C, truth)
    plan = Plan(
        rule=R6C,
        summary="Consider an urgent chest X-ray (within 2 weeks) to assess for lung cancer (NG12 1.1.3)",
        indicator="info",
        actions=("Consider an urgent chest X-ray, to be performed within 2 weeks (NG12 1.1.3).",),
        evidence=facts.ng12_consider.evidence,
        context=_context(given),
        missing=_missing(given),
        order=chest_xray("urgent", "Possible lung cancer (NICE NG12 1.1.3): urgent chest X-ray, within 2 weeks."),
    )
    return Verdict(R6C, True, plan)


def spinal_red_flags(given: Given) -> Truth:
    """R8's own criteria: no known cancer, spinal pain with a red-flag feature."""
    facts = given.facts
    return all_of(negate(facts.lung_ca.truth), facts.spinal_pain.truth, facts.pain_feature.truth)


def merge_spinal_line(plans: dict[str, Plan], given: Given) -> bool:
    """R8 - NICE NG234 section 1.3 (no known cancer) with NG12: a line on the R6a/R6b card.

    Adds the line to the highest NG12 card in ``plans`` when R8's criteria hold; returns
    whether it did.
    """
    facts = given.facts
    target = next((rule_id for rule_id in ("R6a", "R6b") if rule_id in plans), None)
    if target is None or spinal_red_flags(given) is not True:
        return False
    plan = plans[target]
    plans[target] = replace(
        plan,
        evidence=(*plan.evidence, *facts.spinal_pain.evidence, *facts.pain_feature.evidence),
        also=(
            *plan.also,
            "Spinal pain with red-flag features in a person with suspected lung cancer (R8): consider spinal "
            "metastases; urgent oncology assessment if cancer is confirmed.",
        ),
    )
    return True

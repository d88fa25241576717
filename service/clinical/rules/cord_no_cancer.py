"""Cord compression without a known cancer: R7.

Evidence: NICE NG234 section 1.3 (people without a past or current cancer; cord
compression may be the first presentation) https://www.nice.org.uk/guidance/ng234/chapter/Recommendations ;
ACR Appropriateness Criteria Myelopathy variant 1 (MRI); ACP 2011 high-value care advice
(imaging for severe or progressive neurological deficits). docs/clinical/decision-table.md#rules: not a
NICE lung-cancer rule, moderate evidence.
"""

from __future__ import annotations

from service.clinical.recordparts import RecordPart
from service.clinical.rules.base import Plan, RuleSpec, Verdict, all_of, negate
from service.clinical.rules.citations import ACP_2011, ACR_MYELOPATHY, NG234_NO_CANCER
from service.clinical.rules.common import RULES_DATE, RULES_VERSION, SAFETY_NET, cancer_noun, whole_spine_mri
from service.clinical.rules.facts import CANCER_ANY_GROUPS, NEURO_GROUPS, SPINAL_PAIN_GROUPS, Given

__all__ = ["R7", "cord_compression_without_cancer"]

R7 = RuleSpec(
    id="R7",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="Cord compression suspected, no known cancer",
    description=(
        "No past or current cancer on record, a new neurological symptom or sign of cord compression and spinal "
        "pain: emergency same-day assessment and urgent MRI of the spine."
    ),
    logic="not LUNG_CA and NEURO and SPINAL_PAIN",
    strength="Moderate (not a NICE lung-cancer rule)",
    indicator="critical",
    family="spine",
    rank=20,
    superseded_by=(),
    citations=(NG234_NO_CANCER, ACR_MYELOPATHY, ACP_2011),
    valuesets=(*CANCER_ANY_GROUPS, *NEURO_GROUPS, *SPINAL_PAIN_GROUPS),
    reads=(RecordPart.CONDITIONS, RecordPart.OBSERVED_FINDINGS),
)


def cord_compression_without_cancer(given: Given) -> Verdict:
    """R7 - NICE NG234 section 1.3 (no known cancer); ACR Myelopathy variant 1; ACP 2011.

    https://www.nice.org.uk/guidance/ng234/chapter/Recommendations
    """
    facts = given.facts
    truth = all_of(negate(facts.lung_ca.truth), facts.neuro.truth, facts.spinal_pain.truth)
    if truth is not True:
        return Verdict(R7, truth)
    noun = cancer_noun(given.policy)
    plan = Plan(
        rule=R7,
        summary=f"Possible cord compression, no {noun} on record: same-day emergency assessment and urgent spine MRI",
        indicator="critical",
        actions=(
            "Emergency same-day assessment.",
            "Urgent MRI of the whole spine.",
            "Cord compression may be the first presentation of cancer: consider malignancy.",
            SAFETY_NET,
        ),
        evidence=(*facts.neuro.evidence, *facts.spinal_pain.evidence),
        order=whole_spine_mri("stat", "Suspected cord compression with spinal pain: whole spine, same day."),
    )
    return Verdict(R7, True, plan)

"""MSCC and spinal metastases in a person with cancer: R1, R2, R2b, and R3 (MRI contraindicated).

Evidence: NICE NG234 (2023) https://www.nice.org.uk/guidance/ng234/chapter/Recommendations
recs 1.3.2 (box 1), 1.3 box 2, 1.5.2, 1.8.1; QS56 statements 2-4
https://www.nice.org.uk/guidance/qs56; CG75 (2008) key priorities; the Scottish referral
guidelines for R2b; ACR Low Back Pain variant 7 (R2); the Christie pathway (R3, CT when MRI
is contraindicated). See docs/clinical/decision-table.md#r1-mscc-suspected (and the
following sections) and docs/clinical/evidence.md#nice-ng234-spinal-metastases-and-mscc.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from service.clinical.recordparts import IMAGING_PARTS, RecordPart
from service.clinical.rules.base import Plan, RuleSpec, Truth, Verdict, all_of, any_of
from service.clinical.rules.citations import (
    ACP_2011,
    ACR_LOW_BACK_PAIN,
    ACR_MYELOPATHY,
    ASTRO_2024,
    CG75,
    CHRISTIE_MSCC,
    NG234_1_3_2,
    NG234_1_5_2,
    NG234_1_8_1,
    NG234_BOX2,
    NG234_IMAGING,
    QS56_ST2,
    QS56_ST3,
    QS56_ST4,
    SCOTTISH_MSCC,
)
from service.clinical.rules.common import RULES_DATE, RULES_VERSION, SAFETY_NET, cancer_noun, ct_whole_spine
from service.clinical.rules.common import whole_spine_mri as _whole_spine_mri
from service.clinical.rules.facts import CANCER_ANY_GROUPS, NEURO_GROUPS, PAIN_QUALITY_GROUPS, SPINAL_PAIN_GROUPS, Given

__all__ = [
    "R1",
    "R1_ACTIONS",
    "R2",
    "R2B",
    "R3",
    "R1Actions",
    "apply_contraindication",
    "back_pain_without_features",
    "mscc_suspected",
    "spinal_metastases_suspected",
]

_FINDINGS = (RecordPart.CONDITIONS, RecordPart.OBSERVED_FINDINGS)

R1 = RuleSpec(
    id="R1",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="MSCC suspected",
    description=(
        "A past or current cancer (lung cancer by default; any cancer when the cancer scope is 'any') and a "
        "neurological symptom or sign of cord compression new within the neurological window, or a coded cord "
        "compression within its window. Spinal pain is not required (NG234). Never suppressed by recent imaging."
    ),
    logic="LUNG_CA and (NEURO or CORD_COMP_DX)",
    strength="Strong (NICE); the specificity of neurological codes is weak",
    indicator="critical",
    family="spine",
    rank=10,
    superseded_by=(),
    citations=(NG234_1_5_2, NG234_1_3_2, NG234_1_8_1, QS56_ST3, QS56_ST4, CG75, ACR_MYELOPATHY, ASTRO_2024),
    valuesets=(*CANCER_ANY_GROUPS, *NEURO_GROUPS, "cord-compression"),
    reads=(*_FINDINGS, *IMAGING_PARTS),
)

R2 = RuleSpec(
    id="R2",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="Spinal metastases suspected",
    description=(
        "A past or current cancer and spinal pain (active or recent) with a feature suggesting spinal metastases "
        "(thoracic or cervical site, night pain, pain on straining, localised tenderness, progressive pain, or a "
        "severe pain score) or known bone/spinal metastases, without the neurology of R1."
    ),
    logic="LUNG_CA and SPINAL_PAIN and (PAIN_FEATURE or SPINE_METS_KNOWN) and not R1",
    strength="Strong for the 1-week clock; the coding of pain features is weak",
    indicator="warning",
    family="spine",
    rank=40,
    superseded_by=("R1",),
    citations=(NG234_BOX2, NG234_IMAGING, QS56_ST2, CG75, ACR_LOW_BACK_PAIN, ACP_2011),
    valuesets=(
        *CANCER_ANY_GROUPS,
        *SPINAL_PAIN_GROUPS,
        *PAIN_QUALITY_GROUPS,
        "pain-severity",
        "secondary-bone-malignancy",
    ),
    reads=(*_FINDINGS, RecordPart.LAB_RESULTS, *IMAGING_PARTS),
)

R2B = RuleSpec(
    id="R2b",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="Spinal pain in cancer without red-flag features",
    description=(
        "A past or current cancer and spinal pain with none of the features of R2 recorded: spinal metastases can "
        "present with non-specific pain, so reassess for the features and review frequently."
    ),
    logic="LUNG_CA and SPINAL_PAIN and not (R1 or R2)",
    strength="Weak (consensus)",
    indicator="info",
    family="spine",
    rank=81,
    superseded_by=("R1", "R2"),
    citations=(SCOTTISH_MSCC, NG234_BOX2),
    valuesets=(*CANCER_ANY_GROUPS, *SPINAL_PAIN_GROUPS, *PAIN_QUALITY_GROUPS, "pain-severity"),
    reads=(*_FINDINGS, RecordPart.LAB_RESULTS),
)

R3 = RuleSpec(
    id="R3",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="MRI contraindicated: CT of the whole spine",
    description=(
        "When R1 or R2 fires and an MRI contraindication is coded, the card recommends CT of the whole spine with "
        "sagittal reconstructions instead of MRI; myelography only at a neuroscience or spinal centre."
    ),
    logic="(R1 or R2) and MRI_CONTRAINDICATED",
    strength="Moderate (secondary sources)",
    indicator=None,
    family="spine",
    rank=10,
    superseded_by=(),
    citations=(NG234_IMAGING, CHRISTIE_MSCC),
    valuesets=("mri-contraindicated", "ct-spine"),
    reads=_FINDINGS,
)


class R1Actions(NamedTuple):
    """R1's recommended actions by name: recent imaging (R9) rewords some and keeps the others."""

    contact: str
    mri: str
    dexamethasone: str
    immobilise: str
    ct_if_mri_contraindicated: str


R1_ACTIONS = R1Actions(
    contact="Treat as an oncological emergency: contact the MSCC coordinator or acute oncology immediately "
    "(NG234 1.3.2).",
    mri="MRI of the whole spine (sagittal T1 and/or STIR, sagittal T2; axial through any abnormality) as soon as "
    "possible and always within 24 hours (NG234 1.5.2, QS56 statement 3).",
    dexamethasone="Offer dexamethasone 16 mg orally (or the equivalent parenteral dose) as soon as possible unless "
    "contraindicated (NG234 1.8.1).",
    immobilise="Immobilise if spinal instability is suspected and seek expert advice within 24 hours.",
    ct_if_mri_contraindicated="If MRI is contraindicated: CT of the whole spine with sagittal reconstructions.",
)
_R2_ACTIONS = (
    "Seek advice through the MSCC coordinator within 24 hours (NG234 box 2; CG75).",
    "MRI of the whole spine within 1 week (QS56 statement 2).",
    "Do not use plain X-rays of the spine to diagnose or rule out spinal metastases.",
    "Prescribe adequate analgesia.",
    SAFETY_NET,
)
_R2B_ACTIONS = (
    "Spinal metastases can present with non-specific pain: ask about severe, unremitting, progressive or "
    "mechanical pain, pain worse on straining, night pain disturbing sleep, localised tenderness and claudication.",
    "If any is present: seek advice through the MSCC coordinator within 24 hours and arrange whole-spine MRI "
    "within 1 week.",
    "Arrange frequent clinical review.",
    SAFETY_NET,
)
_CODING_CAVEAT = (
    "Pain qualities (progressive, nocturnal, worse on straining, tender) are seldom coded: ask the patient."
)


def mscc_suspected(given: Given) -> Verdict:
    """R1 - NICE NG234 recs 1.3.2, 1.5.2, 1.8.1; QS56 statements 3-4; CG75.

    https://www.nice.org.uk/guidance/ng234/chapter/Recommendations
    """
    facts = given.facts
    truth = all_of(facts.lung_ca.truth, any_of(facts.neuro.truth, facts.cord_comp_dx.truth))
    if truth is not True:
        return Verdict(R1, truth)
    window = given.policy.neuro_window_days
    plan = Plan(
        rule=R1,
        summary="Suspected MSCC: contact the MSCC coordinator now, whole-spine MRI within 24 h, dexamethasone 16 mg",
        indicator="critical",
        actions=R1_ACTIONS,
        evidence=(*facts.lung_ca.evidence, *facts.neuro.evidence, *facts.cord_comp_dx.evidence),
        caveats=(
            f"Weakness, incontinence and gait codes are non-specific in older people: a sign counts when new within "
            f"{window} days (team policy).",
        ),
        order=_whole_spine_mri(
            "stat",
            "Suspected MSCC (NICE NG234 1.5.2): whole spine, sagittal T1/STIR and T2, axial through any "
            "abnormality; as soon as possible and within 24 hours.",
        ),
    )
    return Verdict(R1, True, plan)


def spinal_metastases_suspected(given: Given) -> Verdict:
    """R2 - NICE NG234 section 1.3 box 2 and 1.5; QS56 statement 2 (MRI within 1 week); CG75.

    https://www.nice.org.uk/guidance/ng234/chapter/Recommendations
    """
    facts = given.facts
    features = any_of(facts.pain_feature.truth, facts.spine_mets_known.truth)
    truth = all_of(facts.lung_ca.truth, facts.spinal_pain.truth, features)
    if truth is not True:
        return Verdict(R2, truth)
    plan = Plan(
        rule=R2,
        summary="Possible spinal metastases: MSCC coordinator advice within 24 h, whole-spine MRI within 1 week",
        indicator="warning",
        actions=_R2_ACTIONS,
        evidence=(
            *facts.lung_ca.evidence,
            *facts.spinal_pain.evidence,
            *facts.pain_feature.evidence,
            *facts.spine_mets_known.evidence,
        ),
        missing=facts.neuro.unknown,
        caveats=(
            _CODING_CAVEAT,
            f"A pain score of {given.policy.severe_pain_score:g}/10 or more stands for 'severe' pain (team policy).",
        ),
        order=_whole_spine_mri(
            "urgent",
            "Suspected spinal metastases (QS56 statement 2): whole spine, sagittal T1/STIR and T2; within 1 week.",
        ),
    )
    return Verdict(R2, True, plan)


def back_pain_without_features(given: Given) -> Verdict:
    """R2b - Scottish referral guidelines (frequent review); NICE NG234 section 1.3 (recognition).

    https://www.gov.scot/publications/scottish-referral-guidelines-suspected-cancer-quick-reference-guide/pages/13/
    """
    facts = given.facts
    # Unknown features count as "not shown": the card's advice is to check them, which
    # matters most when they could not be read.
    features_shown = facts.pain_feature.truth is True or facts.spine_mets_known.truth is True
    truth = all_of(facts.lung_ca.truth, facts.spinal_pain.truth, not features_shown)
    if truth is not True:
        return Verdict(R2B, truth)
    noun = cancer_noun(given.policy)
    plan = Plan(
        rule=R2B,
        summary=f"Spinal pain with a past or current {noun}: check red-flag features now and review frequently",
        indicator="info",
        actions=_R2B_ACTIONS,
        evidence=(*facts.lung_ca.evidence, *facts.spinal_pain.evidence),
        missing=(*facts.pain_feature.unknown, *facts.neuro.unknown),
        caveats=(_CODING_CAVEAT,),
    )
    return Verdict(R2B, True, plan)


def apply_contraindication(plans: dict[str, Plan], given: Given) -> Truth:
    """R3 - NICE NG234 section 1.5 (CT if MRI contraindicated); modifies the R1/R2 card in ``plans``.

    Returns R3's truth: whether an MRI contraindication changed a card (``None`` when a
    card needed it and it could not be checked).
    """
    targets = [rule_id for rule_id in ("R1", "R2") if rule_id in plans]
    if not targets:
        return False
    contraindicated = given.facts.mri_contraindicated
    for rule_id in targets:
        plan = plans[rule_id]
        if contraindicated.truth is not True:
            if contraindicated.unknown:
                plans[rule_id] = replace(plan, missing=(*plan.missing, *contraindicated.unknown))
            continue
        urgent = rule_id == "R1"
        plans[rule_id] = replace(
            plan,
            summary=(
                "Suspected MSCC, MRI contraindicated: MSCC coordinator now, CT whole spine within 24 h, "
                "dexamethasone 16 mg"
                if urgent
                else "Possible spinal metastases, MRI contraindicated: coordinator within 24 h, CT whole spine "
                "within 1 week"
            ),
            evidence=(*plan.evidence, *contraindicated.evidence),
            also=(
                *plan.also,
                "MRI contraindicated (R3): CT of the whole spine with sagittal reconstructions instead; "
                "myelography only at a neuroscience or spinal centre.",
            ),
            order=ct_whole_spine(
                "stat" if urgent else "urgent",
                "MRI contraindicated (NICE NG234 1.5): CT whole spine with sagittal reconstructions; "
                + ("within 24 hours." if urgent else "within 1 week."),
            ),
        )
    return contraindicated.truth

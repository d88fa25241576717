"""Pancoast (superior sulcus) tumour or brachial plexopathy: R5.

Evidence: ACR Appropriateness Criteria Plexopathy (2021): dedicated plexus MRI is the most
appropriate initial imaging, also with known malignancy
https://profiles.wustl.edu/en/publications/acr-appropriateness-criteria-plexopathy-2021-update ;
RadioGraphics 2008;28:561 https://pubs.rsna.org/doi/10.1148/rg.282075710 (MRI for foramina,
cord and plexus). No guideline gives a time frame: ``pancoast_imaging_days`` is team
policy (docs/clinical/evidence.md#pancoast-tumours; docs/clinical/team-policy.md#windows). R1
supersedes it: the whole-spine MRI comes first.
"""

from __future__ import annotations

from service.clinical.recordparts import RecordPart
from service.clinical.rules.base import Plan, RuleSpec, Verdict, all_of, any_of
from service.clinical.rules.citations import ACR_PLEXOPATHY, RADIOGRAPHICS_2008
from service.clinical.rules.common import RULES_DATE, RULES_VERSION, brachial_plexus_mri, duration
from service.clinical.rules.facts import Given

__all__ = ["R5", "pancoast_plexopathy"]

R5 = RuleSpec(
    id="R5",
    version=RULES_VERSION,
    date=RULES_DATE,
    title="Pancoast tumour or brachial plexopathy",
    description=(
        "A Pancoast tumour, or an upper-lobe lung cancer, with a recent sign of apical spread (shoulder or arm "
        "pain, Horner syndrome, brachial plexus disorder), when R1 does not fire."
    ),
    logic="PANCOAST and (shoulder/arm pain or plexopathy or Horner or hand weakness) and not R1",
    strength="Weak for timing",
    indicator="warning",
    family="pancoast",
    rank=50,
    superseded_by=("R1",),
    citations=(ACR_PLEXOPATHY, RADIOGRAPHICS_2008),
    valuesets=("pancoast-tumour", "lung-cancer-upper-lobe", "pancoast-signs"),
    reads=(RecordPart.CONDITIONS, RecordPart.OBSERVED_FINDINGS),
)


def pancoast_plexopathy(given: Given) -> Verdict:
    """R5 - ACR Appropriateness Criteria Plexopathy (2021); RadioGraphics 2008;28:561.

    https://profiles.wustl.edu/en/publications/acr-appropriateness-criteria-plexopathy-2021-update
    """
    facts = given.facts
    truth = all_of(facts.pancoast.truth, facts.pancoast_signs.truth)
    if truth is not True:
        return Verdict(R5, truth)
    within = duration(given.policy.pancoast_imaging_days)
    spinal = all_of(facts.spinal_pain.truth, any_of(facts.pain_feature.truth, facts.spine_mets_known.truth))
    actions = [
        f"MRI of the brachial plexus and thoracic inlet within {within} (team policy: no guideline gives a time "
        "frame).",
        "Discuss at the lung cancer multidisciplinary team meeting.",
    ]
    if spinal is True:
        actions.append("Spinal pain with features of spinal metastases is also present: whole-spine MRI as well.")
    plan = Plan(
        rule=R5,
        summary=f"Possible Pancoast tumour with plexus signs: MRI brachial plexus within {within}; discuss at lung MDT",
        indicator="warning",
        actions=tuple(actions),
        evidence=(*facts.pancoast.evidence, *facts.pancoast_signs.evidence),
        order=brachial_plexus_mri(
            "urgent",
            f"Pancoast tumour with plexus signs (ACR Plexopathy 2021): brachial plexus and thoracic inlet; within "
            f"{within}.",
        ),
    )
    return Verdict(R5, True, plan)

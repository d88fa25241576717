"""Orders and wording shared by several rules."""

from __future__ import annotations

from service.clinical.policy import ClinicalPolicy
from service.clinical.rules.base import OrderPlan, Priority

__all__ = [
    "LOINC",
    "RULES_DATE",
    "RULES_VERSION",
    "SAFETY_NET",
    "SNOMED",
    "brachial_plexus_mri",
    "cancer_noun",
    "chest_xray",
    "ct_whole_spine",
    "duration",
    "whole_spine_mri",
]

#: Version and date of the current rule definitions (PlanDefinition.version/date).
RULES_VERSION = "1.0.0"
RULES_DATE = "2026-11-24"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SAFETY_NET = (
    "Safety-net: return immediately with limb weakness, numbness, difficulty walking, or bladder or bowel change."
)


def cancer_noun(policy: ClinicalPolicy) -> str:
    """What "has cancer" means under the configured scope, for card wording."""
    return "cancer" if policy.cancer_scope == "any" else "lung cancer"


def duration(days: int) -> str:
    """7 -> "1 week", 14 -> "2 weeks", 5 -> "5 days"."""
    if days % 7 == 0:
        weeks = days // 7
        return f"{weeks} week" if weeks == 1 else f"{weeks} weeks"
    return f"{days} day" if days == 1 else f"{days} days"


def whole_spine_mri(priority: Priority, note: str) -> OrderPlan:
    # 30854-4 / 411611000119102: whole spine without contrast, the NG234 protocol
    # (sagittal T1/STIR and T2); contrast is the radiologist's call.
    return OrderPlan(
        label="Order MRI of the whole spine",
        valueset="mri-spine-whole",
        codes=((LOINC, "30854-4"), (SNOMED, "411611000119102")),
        text="MRI whole spine (cervical, thoracic and lumbar)",
        priority=priority,
        note=note,
    )


def ct_whole_spine(priority: Priority, note: str) -> OrderPlan:
    return OrderPlan(
        label="Order CT of the whole spine (MRI contraindicated)",
        valueset="ct-spine",
        codes=((SNOMED, "429875006"),),
        text="CT whole spine with sagittal reconstructions",
        priority=priority,
        note=note,
    )


def brachial_plexus_mri(priority: Priority, note: str) -> OrderPlan:
    return OrderPlan(
        label="Order MRI of the brachial plexus",
        valueset="mri-brachial-plexus",
        codes=((LOINC, "30654-8"), (SNOMED, "241618007")),
        text="MRI brachial plexus and thoracic inlet",
        priority=priority,
        note=note,
    )


def chest_xray(priority: Priority, note: str) -> OrderPlan:
    return OrderPlan(
        label="Order a chest X-ray",
        valueset="chest-xray",
        codes=((LOINC, "30745-4"), (SNOMED, "399208008")),
        text="Chest X-ray",
        priority=priority,
        note=note,
    )

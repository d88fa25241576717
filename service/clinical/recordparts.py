"""The parts of a patient's record the rules read, named as a clinician would, and what of them was lost.

The rules say which parts they read (:attr:`~service.clinical.rules.base.RuleSpec.reads`)
and never how the service obtains them: the service maps each of its prefetch keys to a
part (``service.prefetch.RECORD_PARTS``) and builds each query from the value sets the
part holds, declared here. When a part cannot be read, the record carries a
:class:`DataGap` naming it; the facts it could hide become unknown and the cards say so
(docs/clinical/data-quality.md). Resources dropped as not this patient's are counted in
:class:`Excluded` (docs/clinical/patient-integrity.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from service.fastinit import fast_init

__all__ = [
    "FINDING_VALUESETS",
    "IMAGING_PARTS",
    "IMAGING_VALUESETS",
    "LAB_VALUESETS",
    "DataGap",
    "Excluded",
    "Exclusion",
    "RecordPart",
    "parts_holding",
]

#: Labs, scores, body weight, smoking status and pack-years: recorded as Observations only.
LAB_VALUESETS = (
    "calcium-total-mass",
    "calcium-total-molar",
    "calcium-corrected",
    "albumin",
    "pain-severity",
    "body-weight",
    "smoking-status-code",
    "smoking-pack-years",
)
#: Symptoms and signs that some EHRs record as Observations rather than Conditions.
FINDING_VALUESETS = (
    "mscc-neuro-signs",
    "radicular-pain",
    "spinal-pain-cervical",
    "spinal-pain-thoracic",
    "spinal-pain-lumbar",
    "spinal-pain-unspecified",
    "pain-feature-night",
    "pancoast-signs",
    "haemoptysis",
    # Symptoms IG (STU 1) shape: the code says "Symptom" or "Symptom absent", the value names it.
    "symptom-observation",
    "symptom-absent-observation",
)
#: Spine and chest imaging: orders, studies, reports and procedures suppress or reword cards (R9).
IMAGING_VALUESETS = ("mri-spine-whole", "mri-spine-region", "ct-spine", "chest-imaging", "mri-brachial-plexus")


class RecordPart(enum.Enum):
    """A part of the patient's record; its value is how a card names it, its order how a card lists it."""

    DEMOGRAPHICS = "patient demographics"
    CONDITIONS = "conditions"
    OBSERVED_FINDINGS = "symptoms and signs recorded as observations"
    LAB_RESULTS = "laboratory results, pain scores and smoking status"
    IMAGING_ORDERS = "imaging orders"
    IMAGING_STUDIES = "imaging studies"
    IMAGING_REPORTS = "imaging reports"
    IMAGING_PROCEDURES = "imaging procedures"
    DRAFT_ORDERS = "draft orders"

    @property
    def label(self) -> str:
        return self.value


#: Where recent imaging (R9) is read from: every one of them can hold the scan or order that rewords a card.
IMAGING_PARTS = (
    RecordPart.IMAGING_ORDERS,
    RecordPart.IMAGING_STUDIES,
    RecordPart.IMAGING_REPORTS,
    RecordPart.IMAGING_PROCEDURES,
)


def parts_holding(valueset: str) -> tuple[RecordPart, ...]:
    """The parts a concept of ``valueset`` may be recorded in.

    A result is only among the lab results; a finding is a Condition or, for the value
    sets of :data:`FINDING_VALUESETS`, an Observation; anything else a Condition.
    """
    if valueset in LAB_VALUESETS:
        return (RecordPart.LAB_RESULTS,)
    if valueset in FINDING_VALUESETS:
        return (RecordPart.CONDITIONS, RecordPart.OBSERVED_FINDINGS)
    return (RecordPart.CONDITIONS,)


@fast_init
@dataclass(frozen=True, slots=True)
class DataGap:
    """Data the service could not obtain, and why (no PHI).

    ``key`` is where the service asked for it (a prefetch key: the audit and a 412 name
    it); ``part`` is what it is to the rules and the cards (``None``: no rule reads it).
    ``partial``: some of it was read (the first pages of a longer search): the rules
    screen what was read and the cards say the rest is missing, instead of a 412.
    """

    key: str
    reason: str
    partial: bool = False
    part: RecordPart | None = None


class Exclusion(enum.StrEnum):
    """Why a resource was not used: a fixed, low-cardinality set (metric label, audit, card)."""

    ANOTHER_PATIENT = "another-patient"
    NO_PATIENT = "no-patient"
    UNRESOLVED = "unresolved-reference"

    @property
    def phrase(self) -> str:
        """How a card says it: "… not used: 2 conditions {phrase}"."""
        return {
            Exclusion.ANOTHER_PATIENT: "recorded for another patient",
            Exclusion.NO_PATIENT: "with no patient reference",
            Exclusion.UNRESOLVED: "whose patient reference cannot be tied to this patient",
        }[self]


@fast_init
@dataclass(frozen=True, slots=True)
class Excluded:
    """``count`` resources sent as ``key`` (``part`` of the record) dropped for ``reason`` (no ids, no PHI)."""

    key: str
    reason: Exclusion
    count: int
    part: RecordPart | None = None

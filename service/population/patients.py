"""One patient of an export through the hook's screener: the worklist rows of its cards.

The record is built as the hook builds it (:class:`~service.fhir.record.PatientRecord`),
with every resource of the patient and no gap: a Bulk export has no prefetch key that
could not be read. The cards come from the screener unchanged; the worklist keeps their
rule, indicator and summary, and takes the evidence and the whole-spine MRI from what
the rules decided (:class:`~service.clinical.outcome.CardBasis`), never from a rule of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.clinical.deceased import is_deceased
from service.clinical.outcome import CardBasis, Screener
from service.fhir.integrity import PatientReferences
from service.fhir.record import PatientRecord, Resource

__all__ = ["PatientResult", "WorklistRow", "screen_patient"]


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One card of one patient, as the coordinator's worklist shows it."""

    patient_id: str
    rule: str
    indicator: str
    summary: str
    #: the resources the card cites ("Condition/abc")
    evidence: tuple[str, ...]
    #: the whole-spine MRI the card cites: "done", "ordered" or "none" (see docs/population.md)
    whole_spine_mri: str

    def to_json(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "rule": self.rule,
            "indicator": self.indicator,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "whole_spine_mri": self.whole_spine_mri,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorklistRow:
        return cls(
            patient_id=str(data["patient_id"]),
            rule=str(data["rule"]),
            indicator=str(data["indicator"]),
            summary=str(data["summary"]),
            evidence=tuple(str(item) for item in data["evidence"]),
            whole_spine_mri=str(data["whole_spine_mri"]),
        )


@dataclass(frozen=True, slots=True)
class PatientResult:
    patient_id: str
    #: False when the export holds no Patient resource for the id: the hook would answer
    #: 412 (the patient is required), so the population does not screen it either
    screened: bool
    rows: tuple[WorklistRow, ...] = ()
    #: the screener's data notes (types and reasons, no values)
    notes: tuple[str, ...] = ()
    #: the patient had died by the screening time: no card, as on the hook (patient-integrity.md)
    deceased: bool = False


def _mri_state(basis: CardBasis) -> str:
    if "done" in basis.whole_spine_mri:
        return "done"
    return "ordered" if "ordered" in basis.whole_spine_mri else "none"


def _has_own_patient(patient_id: str, resources: Iterable[Resource]) -> bool:
    return any(item.get("resourceType") == "Patient" and item.get("id") == patient_id for item in resources)


def screen_patient(
    screener: Screener, patient_id: str, resources: list[Resource], at: datetime, *, references: PatientReferences
) -> PatientResult:
    """Screen one patient's resources at ``at`` with ``screener``, as the hook would.

    ``references``: the export's reading of references (:meth:`ExportFolder.references
    <service.population.export.ExportFolder.references>`), which grouped the resources by
    patient; the snapshot reads ``Observation.focus`` by it too.
    """
    if not _has_own_patient(patient_id, resources):
        return PatientResult(patient_id, screened=False)
    by_type: dict[str, list[Resource]] = {}
    for resource in resources:
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    record = PatientRecord(patient_id=patient_id, resources=by_type, references=references)
    if is_deceased(record.patient, at):
        return PatientResult(patient_id, screened=True, deceased=True)
    screening = screener.screen(record, at)
    rows = tuple(
        WorklistRow(
            patient_id=patient_id,
            rule=basis.rule_id,
            indicator=card.indicator,
            summary=card.summary,
            evidence=basis.evidence,
            whole_spine_mri=_mri_state(basis),
        )
        for card, basis in zip(screening.cards, screening.bases, strict=True)
    )
    return PatientResult(patient_id, screened=True, rows=rows, notes=tuple(screening.notes))

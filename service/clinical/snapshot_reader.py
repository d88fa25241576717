"""Build the patient snapshot (:mod:`service.clinical.snapshot`) from one hook call's raw FHIR data.

:func:`build_snapshot` walks the record's plain JSON resources once and selects cheaply,
by ``resourceType`` and one value-set index look-up per coding. Only the selected
resources are validated with ``fhir.resources`` (R4B), and only in the elements the
readers use (:class:`~service.clinical.elements.ReadElements`), then read into frozen
dataclasses (:mod:`service.clinical.resource_reader`); everything else is never
validated, so a 10,000-entry record costs little more than parsing it. Of the numeric
results only those the measured facts' selections can choose are validated
(:mod:`service.clinical.deferred`), and only those they choose are kept. A resource
that fails validation is skipped and reported in the notes by type and reason, never
by value or id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from service.clinical.elements import RecurringValues
from service.clinical.policy import ClinicalPolicy
from service.clinical.resource_reader import Reader
from service.clinical.rules.facts import measured_selections
from service.clinical.selection import reach
from service.clinical.snapshot import PatientSnapshot, SnapshotResult
from service.clinical.valuesets import Terminology
from service.clinical.versions import superseded
from service.fhir.integrity import PatientReferences
from service.fhir.record import PatientRecord

__all__ = ["build_snapshot", "imaging_horizon", "measurement_horizon"]


def build_snapshot(
    record: PatientRecord,
    at: datetime,
    valuesets: Terminology,
    policy: ClinicalPolicy,
    *,
    recurring: RecurringValues | None = None,
    every_result: bool = False,
) -> SnapshotResult:
    """Select, validate and read the resources the rules use, as of hook time ``at``.

    ``policy`` sets the measured facts' windows and thresholds (which results they
    choose) and bounds how far back imaging is read: anything older than every window
    that could use it cannot change a decision, so it is not even validated. A naive
    ``at`` is read as UTC. ``recurring``: the caller's cache of validated recurring values.
    ``every_result``: validate every numeric result, not only those that can be chosen;
    the snapshot is the same (a property test checks it), the notes report every defect.
    A finding's ``focus`` is read by ``record.references``, the reading that decided whose
    each resource is (without one: relative references only).
    """
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    selections = measured_selections(policy)
    references = record.references or PatientReferences(None)
    reader = Reader(
        valuesets,
        at,
        selections,
        measurement_horizon=measurement_horizon(policy),
        imaging_horizon=imaging_horizon(policy),
        recurring=recurring,
        every_result=every_result,
        names_patient=lambda reference: references.names(reference, record.patient_id),
        preliminary_findings=policy.preliminary_findings_count,
        skip=superseded(record.all_resources()),
    )
    for resources in record.resources.values():
        reader.read_all(resources, draft=False)
    reader.read_all(record.draft_orders, draft=True)
    reader.finish()
    patient = reader.patient(record.patient_id)
    birth = reader.birth_date(patient) if patient is not None else None
    snapshot = PatientSnapshot(
        at=at,
        patient_id=record.patient_id,
        birth=birth,
        findings=tuple(reader.findings),
        measurements=tuple(reader.measurements),
        smoking=tuple(reader.smoking),
        imaging=tuple(reader.imaging),
        gaps=tuple(record.gaps),
        valuesets=frozenset(valuesets.ids),
        excluded=tuple(record.excluded),
    )
    return SnapshotResult(snapshot, reader.notes.render())


# One policy serves every hook call of a screener: its horizons are worked out once.
@lru_cache(maxsize=32)
def measurement_horizon(policy: ClinicalPolicy) -> timedelta:
    """How far back a numeric result can still be chosen (:func:`~service.clinical.selection.reach`)."""
    return reach(measured_selections(policy))


@lru_cache(maxsize=32)
def imaging_horizon(policy: ClinicalPolicy) -> timedelta:
    """How far back an imaging order or study can matter to R9 (suppression and mentions)."""
    return max(
        timedelta(hours=policy.r1_order_window_hours),
        timedelta(hours=policy.r1_study_window_hours),
        timedelta(days=policy.r2_study_window_days),
        timedelta(days=policy.r2_order_window_days),
        timedelta(days=policy.r6_study_window_days),
        timedelta(days=policy.r6_order_window_days),
    )

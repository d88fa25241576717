"""The typed patient snapshot: the rules' only input, built from one hook call's raw FHIR data.

:func:`build_snapshot` walks the record's plain JSON resources once and selects cheaply,
by ``resourceType`` and one value-set index look-up per coding. Only the selected
resources are validated with ``fhir.resources`` (R4B), and only in the elements the
readers use (:class:`~service.clinical.elements.ReadElements`), then read into frozen
dataclasses (:mod:`service.clinical.resource_reader`); everything else is never validated, so
a 10,000-entry record costs little more than parsing it. A resource that fails
validation is skipped and reported in the notes by type and reason, never by value or id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

from service.clinical.elements import RecurringValues
from service.clinical.resource_reader import Reader, Terminology
from service.clinical.patientdata import Concept, Finding, ImagingEvent, Item, Measurement, SmokingStatus, SourceRef
from service.clinical.policy import ClinicalPolicy
from service.clinical.timing import AgeRange, TimeSpan, age_range
from service.clinical.versions import superseded
from service.fhir.record import DataGap, Excluded, PatientRecord

__all__ = [
    "Concept",
    "Finding",
    "ImagingEvent",
    "Item",
    "Measurement",
    "PatientSnapshot",
    "SmokingStatus",
    "SnapshotResult",
    "SourceRef",
    "Terminology",
    "build_snapshot",
    "imaging_horizon",
    "measurement_horizon",
]


@dataclass(frozen=True, slots=True)
class PatientSnapshot:
    """Everything the rules may read about one patient at one hook time."""

    at: datetime
    patient_id: str
    birth: TimeSpan | None
    findings: tuple[Finding, ...]
    #: calcium, albumin and pain-score results; with ``decisive_only`` only those that can
    #: change a rule's answer
    measurements: tuple[Measurement, ...]
    smoking: tuple[SmokingStatus, ...]
    imaging: tuple[ImagingEvent, ...]
    #: prefetch keys whose data could not be read (from the record)
    gaps: tuple[DataGap, ...]
    #: ids of the loaded ValueSets: a fact whose ValueSet is absent is never true
    valuesets: frozenset[str]
    #: resources dropped as not this patient's (from the record): every card says so
    excluded: tuple[Excluded, ...] = ()
    #: every group a finding is in: most groups have none, and need no look at the findings
    finding_groups: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "finding_groups", frozenset().union(*(item.groups for item in self.findings)))

    def findings_in(self, groups: Iterable[str]) -> tuple[Finding, ...]:
        """Findings in any of ``groups``, in record order."""
        wanted = frozenset(groups)
        return tuple(item for item in self.findings if not item.groups.isdisjoint(wanted))

    def measurements_in(self, groups: Iterable[str]) -> tuple[Measurement, ...]:
        wanted = frozenset(groups)
        return tuple(item for item in self.measurements if not item.groups.isdisjoint(wanted))

    def imaging_in(self, groups: Iterable[str]) -> tuple[ImagingEvent, ...]:
        wanted = frozenset(groups)
        return tuple(item for item in self.imaging if not item.groups.isdisjoint(wanted))

    @property
    def zone(self) -> tzinfo:
        """The hook's time zone: dates without a time, and times on cards, are read in it."""
        return self.at.tzinfo or UTC

    @property
    def gap_keys(self) -> frozenset[str]:
        return frozenset(gap.key for gap in self.gaps)

    @property
    def age(self) -> AgeRange | None:
        return age_range(self.birth, self.at) if self.birth is not None else None


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    snapshot: PatientSnapshot
    #: data problems met (type and reason only, no values or ids); safe to log
    notes: tuple[str, ...]


def build_snapshot(
    record: PatientRecord,
    at: datetime,
    valuesets: Terminology,
    policy: ClinicalPolicy,
    *,
    decisive_only: bool = False,
    recurring: RecurringValues | None = None,
) -> SnapshotResult:
    """Select, validate and read the resources the rules use, as of hook time ``at``.

    ``policy`` bounds how far back labs and imaging are read: a result older than every
    window that could use it cannot change a decision, so it is not even validated. A
    naive ``at`` is read as UTC.

    ``decisive_only`` (the engine's choice): of the calcium, albumin and pain-score
    results, only those that can change a rule's answer under ``policy`` are validated
    and kept (:mod:`service.clinical.decisive`): the rules answer the same, and results
    that were never read add no notes. Without it every result is read, as a data
    inspection wants. ``recurring``: the caller's cache of validated recurring values.
    """
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    reader = Reader(
        valuesets,
        at,
        measurement_horizon=measurement_horizon(policy),
        imaging_horizon=imaging_horizon(policy),
        decisive_for=policy if decisive_only else None,
        recurring=recurring,
        patient_id=record.patient_id,
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
    """How far back a result can matter: calcium (plus its albumin pairing), pain score or body weight."""
    calcium = timedelta(days=policy.calcium_result_window_days, hours=policy.albumin_pairing_hours)
    return max(calcium, timedelta(days=policy.spinal_pain_window_days), timedelta(days=policy.ng12_symptom_window_days))


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

"""The typed patient snapshot: the rules' only input, one hook call's patient data as frozen dataclasses.

Only types: nothing here reads FHIR. :func:`service.clinical.snapshot_reader.build_snapshot`
builds a snapshot from the raw record; the rules import this module without loading
the reader or ``fhir.resources`` (a layer test checks it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from service.clinical.patientdata import Concept, Finding, ImagingEvent, Item, Measurement, SmokingStatus, SourceRef
from service.clinical.recordparts import DataGap, Excluded
from service.clinical.timing import AgeRange, TimeSpan, age_range
from service.fastinit import fast_init

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
]


@fast_init
@dataclass(frozen=True, slots=True)
class PatientSnapshot:
    """Everything the rules may read about one patient at one hook time."""

    at: datetime
    patient_id: str
    birth: TimeSpan | None
    findings: tuple[Finding, ...]
    #: the numeric results the measured facts choose (:mod:`service.clinical.selection`),
    #: each once, in record order: nothing else of a record's results
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
    def age(self) -> AgeRange | None:
        return age_range(self.birth, self.at) if self.birth is not None else None


@fast_init
@dataclass(frozen=True, slots=True)
class SnapshotResult:
    snapshot: PatientSnapshot
    #: data problems met (type and reason only, no values or ids); safe to log
    notes: tuple[str, ...]

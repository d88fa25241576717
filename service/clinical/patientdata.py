"""What the snapshot holds about a patient: findings, measurements, smoking, imaging.

Frozen dataclasses read from validated FHIR resources (:mod:`service.clinical.resource_reader`);
the rules never see FHIR JSON. Each item keeps its :class:`SourceRef` so a card can cite
it and a suggested order can reference it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from service.clinical.bodysites import BodySiteClass
from service.clinical.timing import TimeSpan
from service.fastinit import fast_init

__all__ = ["Concept", "Finding", "ImagingEvent", "Item", "Measurement", "SmokingStatus", "SourceRef"]


@fast_init
@dataclass(frozen=True, slots=True)
class SourceRef:
    """The resource a fact came from (cards cite it; suggestions reference it)."""

    resource_type: str
    id: str | None

    @property
    def reference(self) -> str | None:
        return f"{self.resource_type}/{self.id}" if self.id else None


@fast_init
@dataclass(frozen=True, slots=True)
class Concept:
    """The coding that matched, with a display fit for a card."""

    system: str
    code: str
    display: str


@fast_init
@dataclass(frozen=True, slots=True)
class Finding:
    """A diagnosis, symptom or sign: a Condition, or an Observation whose code is the finding."""

    source: SourceRef
    concept: Concept
    #: ids of every ValueSet any of its codings belongs to
    groups: frozenset[str]
    #: Condition.onset[x]; Observation.effective[x]
    onset: TimeSpan | None
    #: Condition.recordedDate; Observation.issued
    recorded: TimeSpan | None
    abated: TimeSpan | None = None
    #: Condition.clinicalStatus code (None for Observations or when absent)
    clinical_status: str | None = None
    #: mCODE profile in meta.profile
    mcode: Literal["primary", "secondary"] | None = None
    body_sites: frozenset[BodySiteClass] = frozenset()
    #: an Observation with status "preliminary" (not yet signed off): cards say so
    preliminary: bool = False

    @property
    def times(self) -> tuple[TimeSpan, ...]:
        return tuple(span for span in (self.onset, self.recorded) if span is not None)

    @property
    def first_time(self) -> TimeSpan | None:
        """When it began: onset when known, else when it was first recorded."""
        return self.onset or self.recorded

    def is_current(self, at: datetime) -> bool:
        """Not resolved, inactive, in remission or abated before ``at``."""
        if self.clinical_status in ("resolved", "inactive", "remission"):
            return False
        return self.abated is None or self.abated.start > at

    @property
    def is_active(self) -> bool:
        return self.clinical_status in ("active", "recurrence", "relapse")


@fast_init
@dataclass(frozen=True, slots=True)
class Measurement:
    """A numeric Observation (lab, score, body weight) with status final, amended or corrected."""

    source: SourceRef
    concept: Concept
    groups: frozenset[str]
    when: TimeSpan
    value: Decimal
    #: the reported unit (UCUM code, else Quantity.unit); None when the result has none
    unit: str | None

    @property
    def shown(self) -> str:
        """The value as reported, with its unit: "12.5 mg/dL"."""
        return f"{self.value} {self.unit}" if self.unit else str(self.value)


@fast_init
@dataclass(frozen=True, slots=True)
class SmokingStatus:
    """A tobacco smoking status Observation (LOINC 72166-2) and its answer."""

    source: SourceRef
    when: TimeSpan | None
    answer: Concept | None
    answer_groups: frozenset[str]


@fast_init
@dataclass(frozen=True, slots=True)
class ImagingEvent:
    """An imaging order (ordered) or a study, report or procedure (done)."""

    source: SourceRef
    concept: Concept
    groups: frozenset[str]
    state: Literal["ordered", "done"]
    #: ordered: authoredOn; done: started / effective / performed / occurrence
    when: TimeSpan | None
    #: a draft order (the hook's draftOrders, or status ``draft``): not yet active, so it
    #: never rewords or suppresses a card (R9)
    draft: bool = False


#: Anything a card can cite as evidence.
Item = Finding | Measurement | SmokingStatus | ImagingEvent

"""The patient's raw FHIR data for one hook call, and what could not be read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cds_hooks.prefetch import PrefetchState

__all__ = ["DataGap", "PatientRecord", "Resource"]

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DataGap:
    """A prefetch key whose data the service could not obtain, and why (no PHI).

    ``partial``: some of it was read (the first pages of a longer search): the rules
    screen what was read and the cards say the rest is missing, instead of a 412.
    """

    key: str
    reason: str
    partial: bool = False


@dataclass(slots=True)
class PatientRecord:
    """Resources by prefetch key, as parsed JSON; the snapshot selects from them."""

    patient_id: str
    resources: dict[str, list[Resource]] = field(default_factory=dict)
    #: order-select / order-sign: the orders being drafted (context.draftOrders)
    draft_orders: list[Resource] = field(default_factory=list)
    #: order-select only: ``Type/id`` of the orders just selected (context.selections),
    #: the only drafts that hook call decides on; ``None`` on every other hook
    selections: tuple[str, ...] | None = None
    states: dict[str, PrefetchState] = field(default_factory=dict)
    gaps: list[DataGap] = field(default_factory=list)
    #: resources fetched from fhirServer, by key (audit: queries made and their size)
    fetched: dict[str, int] = field(default_factory=dict)

    def all_resources(self) -> Iterator[Resource]:
        for resources in self.resources.values():
            yield from resources

    @property
    def patient(self) -> Resource | None:
        for resource in self.all_resources():
            if resource.get("resourceType") == "Patient":
                return resource
        return None

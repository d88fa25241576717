"""The patient's raw FHIR data for one hook call, and what could not be read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cds_hooks.prefetch import PrefetchState
from service.clinical.recordparts import DataGap, Excluded

if TYPE_CHECKING:  # service.fhir.integrity imports this module: at run time the import would be circular
    from service.fhir.integrity import PatientReferences

__all__ = ["PatientRecord", "Resource"]

Resource = dict[str, Any]


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
    #: resources dropped because they are not this patient's (service.fhir.integrity)
    excluded: list[Excluded] = field(default_factory=list)
    #: how this call's references were read when its resources were kept (the request's
    #: fhirServer and Bundle entries); the snapshot reads ``Observation.focus`` by the same.
    #: ``None``: neither is known, only relative references name the patient
    references: PatientReferences | None = None

    def all_resources(self) -> Iterator[Resource]:
        for resources in self.resources.values():
            yield from resources

    @property
    def patient(self) -> Resource | None:
        """The context patient's Patient resource; never one with another id."""
        for resource in self.all_resources():
            if resource.get("resourceType") == "Patient" and resource.get("id") == self.patient_id:
                return resource
        return None

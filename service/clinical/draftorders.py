"""The hook's draft orders as the order review reads them: spine imaging ServiceRequests.

On ``order-sign`` every draft of ``context.draftOrders`` is about to be signed; on
``order-select`` only the ``selections`` are the orders being decided (the Bundle also
holds the session's earlier, unsigned orders, which were reviewed when they were
selected and will be again at ``order-sign``). So only those drafts are read here.

A draft is kept when it is a ServiceRequest for this patient whose code is in a spine
imaging value set. Its reasons are kept for the order that would replace it: the coded
reasons as sent (validated), and the reasons that reference a resource of this
patient's record (a relative ``Type/id`` the prefetch holds); any other reference
(another patient's resource, an absolute URL we cannot check) is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest

from service.clinical.elements import ReadElements
from service.clinical.fhirraw import ReadContext
from service.clinical.patientdata import Concept
from service.clinical.rules.base import Priority
from service.clinical.valuesets import Terminology
from service.fastinit import fast_init
from service.fhir.integrity import PatientReferences
from service.fhir.record import PatientRecord, Resource

__all__ = [
    "PRIORITY_ORDER",
    "REASON_TYPES",
    "SPINE_IMAGING",
    "DraftOrder",
    "at_least",
    "read_draft_orders",
]

#: The value sets of spine imaging an order review looks at. ``xray-spine`` has no value set
#: yet (no verified code for a plain spine radiograph; profiles/valuesets/README.md): it
#: matches nothing until one is added.
SPINE_IMAGING = frozenset({"mri-spine-whole", "mri-spine-region", "ct-spine", "xray-spine"})
#: FHIR request-priority, least urgent first.
PRIORITY_ORDER: tuple[Priority, ...] = ("routine", "urgent", "asap", "stat")
#: ServiceRequest.reasonReference targets allowed by FHIR R4.
REASON_TYPES = frozenset({"Condition", "Observation", "DiagnosticReport", "DocumentReference"})
# Orders that will never be carried out: nothing to review.
_CLOSED = frozenset({"completed", "revoked", "entered-in-error"})
_ELEMENTS = ReadElements(
    ServiceRequest, ("id", "status", "code", "priority", "subject", "reasonCode", "reasonReference")
)


def _priority(value: object) -> Priority:
    # FHIR reads a missing priority as "normal"; a code outside request-priority (the
    # binding is required, but a client may still send one) is read the same way, so
    # that the card errs towards asking for more urgency.
    return value if value in PRIORITY_ORDER else "routine"


def at_least(priority: Priority, needed: Priority) -> bool:
    """Whether ``priority`` is as urgent as ``needed`` or more."""
    return PRIORITY_ORDER.index(priority) >= PRIORITY_ORDER.index(needed)


@fast_init
@dataclass(frozen=True, slots=True)
class DraftOrder:
    """A draft spine imaging order of this hook call."""

    id: str
    concept: Concept
    #: the spine imaging value sets its code is in
    groups: frozenset[str]
    #: ``routine`` when the draft states none (FHIR: "normal priority" when missing)
    priority: Priority
    #: ServiceRequest.reasonCode as sent
    reason_codes: tuple[dict[str, Any], ...]
    #: ServiceRequest.reasonReference that point at this patient's resources
    reason_references: tuple[str, ...]
    #: the resource as sent: an ``update`` action carries it whole
    resource: Resource

    @property
    def reference(self) -> str:
        return f"ServiceRequest/{self.id}"


def _decided(record: PatientRecord) -> Iterable[Resource]:
    # The Bundle is the client's JSON: an entry may be anything.
    drafts = [resource for resource in record.draft_orders if isinstance(resource, dict)]
    if record.selections is None:
        return drafts
    selected = frozenset(record.selections)
    return (resource for resource in drafts if f"{resource.get('resourceType')}/{resource.get('id')}" in selected)


def _patient_resources(record: PatientRecord) -> frozenset[str]:
    return frozenset(
        f"{resource['resourceType']}/{resource['id']}"
        for resource in record.all_resources()
        if isinstance(resource, dict)
        and isinstance(resource.get("resourceType"), str)
        and isinstance(resource.get("id"), str)
    )


def read_draft_orders(record: PatientRecord, terminology: Terminology, at: datetime) -> tuple[DraftOrder, ...]:
    """The spine imaging orders among the drafts this hook call decides on, in Bundle order."""
    context = ReadContext(terminology, at)
    # Whose order it is, read as the hook read every subject (service.fhir.integrity); without
    # the hook's reading, only a relative reference names the patient.
    references = record.references or PatientReferences(None)
    known: frozenset[str] | None = None
    drafts: list[DraftOrder] = []
    for resource in _decided(record):
        if resource.get("resourceType") != "ServiceRequest":
            continue
        groups, concept = context.match_one(resource.get("code"))
        groups &= SPINE_IMAGING
        if not groups or concept is None:
            continue
        order = context.validate(_ELEMENTS, resource)
        if order is None or order.id is None or order.status in _CLOSED:
            continue
        if not references.names(resource.get("subject"), record.patient_id):
            continue  # not this patient's order: never act on it
        if known is None:
            known = _patient_resources(record)
        reasons = tuple(
            dict.fromkeys(
                reason.reference
                for reason in order.reasonReference or ()
                if reason.reference in known and reason.reference.split("/", 1)[0] in REASON_TYPES
            )
        )
        drafts.append(
            DraftOrder(
                id=order.id,
                concept=concept,
                groups=groups,
                priority=_priority(order.priority),
                reason_codes=tuple(deepcopy(resource.get("reasonCode") or ())),
                reason_references=reasons,
                resource=deepcopy(resource),
            )
        )
    return tuple(drafts)

"""Imaging orders, studies, reports and procedures, read for R9 and single-region mentions.

An order (ServiceRequest ``active``/``draft``, ImagingStudy ``registered``) is "ordered"
at its authoredOn; a ``completed`` order, an ``available`` study, an issued report or a
``completed`` procedure is "done" when the scan was performed: ``ImagingStudy.started``,
``Procedure.performed[x]``, ``DiagnosticReport.effective[x]`` (never its ``issued``, the
release of the report, which may follow the scan by days), a completed order's occurrence
(else its authoredOn, which the scan cannot precede). A report without ``effective[x]``
has no scan time (docs/clinical/decision-table.md#r9-recent-imaging). Proposals, plans and options
are not orders, nor is an order with ``doNotPerform`` true.
A ``draft`` ServiceRequest, and every order of the hook's ``draftOrders``, is marked
``draft``: it is not an active order yet (docs/clinical/decision-table.md#r9-recent-imaging) and may never be signed,
so R9 never rewords or suppresses a card for it; it is still read for the single-region
mention.
"""

from __future__ import annotations

from typing import Any, Literal

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest

from service.clinical.elements import ReadElements
from service.clinical.fhirraw import ReadContext
from service.clinical.patientdata import ImagingEvent, SourceRef
from service.clinical.timing import TimeSpan

__all__ = ["IMAGING_GROUPS", "IMAGING_TYPES", "read_imaging"]

IMAGING_GROUPS = frozenset(
    {"mri-spine-whole", "mri-spine-region", "ct-spine", "chest-imaging", "chest-xray", "mri-brachial-plexus"}
)
IMAGING_TYPES = frozenset({"ServiceRequest", "DiagnosticReport", "Procedure", "ImagingStudy"})
_ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
_REPORT_DONE = frozenset({"partial", "preliminary", "final", "amended", "corrected", "appended"})
State = Literal["ordered", "done"]
# What the readers below take from each type (the code is matched raw); only these are validated.
_SERVICE_REQUEST = ReadElements(
    ServiceRequest, ("id", "status", "intent", "doNotPerform", "code", "occurrence[x]", "authoredOn")
)
_REPORT = ReadElements(DiagnosticReport, ("id", "status", "code", "effective[x]"))
_PROCEDURE = ReadElements(Procedure, ("id", "status", "code", "performed[x]"))
_STUDY = ReadElements(ImagingStudy, ("id", "status", "procedureCode", "started"))
# "registered": the study exists but has no images yet, i.e. it is booked.
_STUDY_STATE: dict[str, State] = {"available": "done", "registered": "ordered"}


def read_imaging(context: ReadContext, resource: dict[str, Any], *, draft: bool) -> ImagingEvent | None:
    """The imaging event of a raw resource, or ``None`` when it is not spine/chest imaging."""
    kind = str(resource.get("resourceType"))
    if kind == "ImagingStudy":
        codes = resource.get("procedureCode")
        groups, concept = context.match(codes if isinstance(codes, list) else ())
    else:
        groups, concept = context.match_one(resource.get("code"))
    groups &= IMAGING_GROUPS
    if not groups or concept is None:
        return None
    state_when = _state_and_time(context, kind, resource, draft=draft)
    if state_when is None:
        return None
    model_id, state, when = state_when
    unsigned = draft or (kind == "ServiceRequest" and resource.get("status") == "draft")
    return ImagingEvent(SourceRef(kind, model_id), concept, groups, state, when, unsigned)


def _state_and_time(
    context: ReadContext, kind: str, resource: dict[str, Any], *, draft: bool
) -> tuple[str | None, State, TimeSpan | None] | None:
    if kind == "ServiceRequest":
        order = context.validate(_SERVICE_REQUEST, resource)
        # doNotPerform: an order *not* to image (a modifier element) is no imaging at all.
        if order is None or order.intent not in _ORDER_INTENTS or order.doNotPerform:
            return None
        if order.status == "completed":
            # The study happened after the order was written: authoredOn is a safe lower bound.
            when = context.span(order.occurrenceDateTime, order.occurrencePeriod) or context.time(order.authoredOn)
            return order.id, "done", when
        if order.status in ("active", "draft"):
            # An order being written in this hook call has no authoredOn yet: it is "now".
            when = context.time(order.authoredOn) or (TimeSpan.instant(context.at) if draft else None)
            return order.id, "ordered", when
        return None
    if kind == "DiagnosticReport":
        report = context.validate(_REPORT, resource)
        if report is None or report.status not in _REPORT_DONE:
            return None
        return report.id, "done", context.span(report.effectiveDateTime, report.effectivePeriod)
    if kind == "Procedure":
        procedure = context.validate(_PROCEDURE, resource)
        if procedure is None or procedure.status != "completed":
            return None
        return procedure.id, "done", context.span(procedure.performedDateTime, procedure.performedPeriod)
    study = context.validate(_STUDY, resource)
    state = _STUDY_STATE.get(str(study.status)) if study is not None else None
    return (study.id, state, context.time(study.started)) if study is not None and state is not None else None

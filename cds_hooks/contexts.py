"""Typed ``context`` objects of the hooks this layer knows (CDS Hooks Library STU1 1.0.1).

Unknown hooks keep their context as a plain object; a known hook's context must carry
its REQUIRED fields, else the request is malformed (400).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, WithJsonSchema

from cds_hooks.errors import MalformedRequest

__all__ = [
    "FHIR_ID",
    "PREFETCH_TOKEN_FIELDS",
    "EncounterStartContext",
    "HookContext",
    "OrderSelectContext",
    "OrderSignContext",
    "PatientViewContext",
    "parse_context",
]

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
#: FHIR R4 ``id``: 1 to 64 of ``[A-Za-z0-9\-.]``. ``patientId`` and ``encounterId`` are FHIR
#: ids ("The FHIR Patient.id"), and they are pasted into prefetch queries: nothing else passes.
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _fhir_id(value: str) -> str:
    if not FHIR_ID.match(value):
        raise ValueError("must be a FHIR id: 1 to 64 letters, digits, '-' or '.'")
    return value


FhirId = Annotated[str, AfterValidator(_fhir_id), WithJsonSchema({"type": "string", "pattern": FHIR_ID.pattern})]


class HookContext(BaseModel):
    """Fields every patient-facing hook shares; extra fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    userId: NonEmptyStr
    patientId: FhirId
    encounterId: FhirId | None = None


class PatientViewContext(HookContext):
    """``patient-view`` (maturity 5): ``encounterId`` optional."""


class EncounterStartContext(HookContext):
    """``encounter-start`` (maturity 1): ``encounterId`` REQUIRED."""

    encounterId: FhirId


class OrderSignContext(HookContext):
    """``order-sign`` (maturity 5): the draft orders about to be signed."""

    draftOrders: dict[str, Any]


class OrderSelectContext(OrderSignContext):
    """``order-select`` (maturity 4): the orders just selected, among the drafts."""

    selections: list[NonEmptyStr] = Field(min_length=1)


_CONTEXTS: dict[str, type[HookContext]] = {
    "patient-view": PatientViewContext,
    "encounter-start": EncounterStartContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


#: Context fields each hook's definition marks "Prefetch Token: Yes". ``draftOrders`` and
#: ``selections`` are not among them: they are not root-level primitives, so an order
#: hook's draft orders always travel in its context and can never be prefetched.
PREFETCH_TOKEN_FIELDS: dict[str, frozenset[str]] = {
    hook: frozenset({"userId", "patientId", "encounterId"}) for hook in _CONTEXTS
}


def parse_context(hook: str, context: dict[str, Any]) -> HookContext:
    """Validate ``context`` for ``hook``; raise :class:`MalformedRequest` with field paths."""
    model = _CONTEXTS.get(hook)
    if model is None:
        raise MalformedRequest(f"No context model for the hook {hook!r}.")
    try:
        return model.model_validate(context)
    except ValidationError as exc:
        details = [
            "context." + ".".join(str(part) for part in problem["loc"]) + f": {problem['msg']}"
            for problem in exc.errors(include_url=False, include_input=False)
        ]
        raise MalformedRequest(f"The context does not fit the {hook} hook.", details=details) from None

"""Hook contexts (CDS Hooks Library 1.0.1): required fields per hook, 400 with field paths."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cds_hooks.contexts import (
    EncounterStartContext,
    HookContext,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    parse_context,
)
from cds_hooks.errors import MalformedRequest

BASE = {"userId": "Practitioner/pr-1", "patientId": "p-1"}
DRAFTS = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [{"resource": {"resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order"}}],
}


@pytest.mark.parametrize(
    ("hook", "context", "model"),
    [
        ("patient-view", BASE, PatientViewContext),
        ("patient-view", {**BASE, "encounterId": "e-1"}, PatientViewContext),
        ("encounter-start", {**BASE, "encounterId": "e-1"}, EncounterStartContext),
        ("order-sign", {**BASE, "draftOrders": DRAFTS}, OrderSignContext),
        ("order-select", {**BASE, "draftOrders": DRAFTS, "selections": ["ServiceRequest/sr-1"]}, OrderSelectContext),
    ],
)
def test_each_known_hook_gets_its_context_model(hook: str, context: dict[str, Any], model: type[HookContext]) -> None:
    parsed = parse_context(hook, context)
    assert type(parsed) is model
    assert parsed.patientId == "p-1"
    assert parsed.userId == "Practitioner/pr-1"


def test_patient_view_encounter_is_optional() -> None:
    assert parse_context("patient-view", BASE).encounterId is None


def _details(hook: str, context: dict[str, Any]) -> list[str]:
    with pytest.raises(MalformedRequest) as caught:
        parse_context(hook, context)
    assert caught.value.status_code == 400
    assert caught.value.message == f"The context does not fit the {hook} hook."
    return caught.value.details


def test_encounter_start_requires_the_encounter() -> None:
    assert _details("encounter-start", BASE) == ["context.encounterId: Field required"]


@pytest.mark.parametrize("hook", ["patient-view", "encounter-start", "order-sign", "order-select"])
@pytest.mark.parametrize("missing", ["userId", "patientId"])
def test_user_and_patient_are_required_by_every_hook(hook: str, missing: str) -> None:
    context = {**BASE, "encounterId": "e-1", "draftOrders": DRAFTS, "selections": ["ServiceRequest/sr-1"]}
    del context[missing]
    assert _details(hook, context) == [f"context.{missing}: Field required"]


FHIR_ID_PROBLEM = "Value error, must be a FHIR id: 1 to 64 letters, digits, '-' or '.'"


@pytest.mark.parametrize(
    "identifier", ["", "p1&_include=*&x=", "p 1", "Patient/p1", "p1\x00", "é", "x" * 65, "p1?x", "%2F"]
)
@pytest.mark.parametrize("field", ["patientId", "encounterId"])
def test_identifiers_that_go_into_queries_must_be_fhir_ids(field: str, identifier: str) -> None:
    # They are pasted into every prefetch query: "Condition?patient=p1&_include=*&x=" is not one id.
    assert _details("encounter-start", {**BASE, "encounterId": "e-1", field: identifier}) == [
        f"context.{field}: {FHIR_ID_PROBLEM}"
    ]


@pytest.mark.parametrize("identifier", ["p", "A-b.9", "x" * 64])
def test_fhir_ids_are_accepted(identifier: str) -> None:
    assert parse_context("patient-view", {**BASE, "patientId": identifier}).patientId == identifier


def test_order_sign_requires_draft_orders() -> None:
    assert _details("order-sign", BASE) == ["context.draftOrders: Field required"]


def test_order_select_requires_at_least_one_selection() -> None:
    assert _details("order-select", {**BASE, "draftOrders": DRAFTS, "selections": []}) == [
        "context.selections: List should have at least 1 item after validation, not 0"
    ]
    assert _details("order-select", {**BASE, "draftOrders": DRAFTS}) == ["context.selections: Field required"]


def test_problem_messages_never_echo_the_input() -> None:
    details = _details("patient-view", {"userId": "Practitioner/pr-1", "patientId": {"secret": "NHS 943 476 5919"}})
    assert details == ["context.patientId: Input should be a valid string"]


def test_extra_context_fields_are_kept() -> None:
    parsed = parse_context("patient-view", {**BASE, "com.vendor.location": "ward-3"})
    assert parsed.model_dump()["com.vendor.location"] == "ward-3"


def test_a_hook_without_a_context_model_is_rejected() -> None:
    with pytest.raises(MalformedRequest, match="No context model for the hook 'appointment-book'"):
        parse_context("appointment-book", BASE)


def test_contexts_are_immutable() -> None:
    parsed = parse_context("patient-view", BASE)
    with pytest.raises(ValidationError, match="frozen"):
        parsed.patientId = "other"  # type: ignore[misc]

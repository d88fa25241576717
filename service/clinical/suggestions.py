"""A card's suggestions: the order its rule proposes, or the fix of a draft order.

The CDS Hooks 2.0 way to replace a draft is one suggestion whose actions are applied
together, like a FHIR transaction (deletes first, then creates, then updates): delete the
draft (``resourceId`` = ``ServiceRequest/<id>``) and create the right order. Epic's CDS
Hooks client documents narrower limits: one action per suggestion, and
``selectionBehavior`` ``any`` only. Where the two conflict, the operator chooses
(:class:`CardSettings`, ``MSCC_CDS__ORDER_ACTIONS``):

``spec``
    one suggestion per fix, with every action it needs; ``selectionBehavior``
    ``at-most-one``.
``epic``
    one action per suggestion (create the right order; delete each wrong draft), each
    recommended, ``selectionBehavior`` ``any``: the clinician accepts both to replace.

A priority raise is one ``update`` in both renderings; an acknowledged draft has no
suggestion. See docs/clinical/order-review.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from service.clinical.draftorders import REASON_TYPES, DraftOrder
from service.clinical.orderreview import OrderReview
from service.clinical.rules.base import OrderPlan, Plan
from service.clinical.snapshot import PatientSnapshot
from service.fastinit import fast_init

__all__ = ["CardSettings", "OrderActions", "OrderCodes", "Suggested", "service_request", "suggest"]

OrderActions = Literal["spec", "epic"]
SelectionBehavior = Literal["at-most-one", "any"]
Suggestion = dict[str, Any]


class CardSettings(BaseModel):
    """How cards are rendered for the CDS client."""

    model_config = ConfigDict(frozen=True)

    #: How a suggestion that fixes a draft order is rendered. "spec": one suggestion with
    #: all its actions (delete the wrong draft and create the whole-spine MRI together),
    #: selectionBehavior at-most-one (CDS Hooks 2.0). "epic": one action per suggestion and
    #: selectionBehavior any, the limits Epic documents for its CDS Hooks client.
    order_actions: OrderActions = "spec"


class OrderCodes(Protocol):
    """What a suggestion needs from the value sets: membership and displays."""

    def contains(self, valueset_id: str, system: str, code: str) -> bool: ...

    def display_of(self, system: str, code: str) -> str | None: ...


@fast_init
@dataclass(frozen=True, slots=True)
class Suggested:
    """A card's suggestions and the selection behaviour they need (both absent without suggestions)."""

    suggestions: list[Suggestion] | None = None
    selection_behavior: SelectionBehavior | None = None


def _orderable(order: OrderPlan, codes: OrderCodes) -> bool:
    return any(codes.contains(order.valueset, system, code) for system, code in order.codes)


def service_request(
    plan: Plan,
    order: OrderPlan,
    snapshot: PatientSnapshot,
    codes: OrderCodes,
    review: OrderReview | None = None,
) -> dict[str, Any]:
    """The draft ServiceRequest ``order`` as a ``create`` carries it.

    Its reasons: the drafts' it replaces (coded reasons as sent, references to this
    patient's resources), then the resources that fired the rule.
    """
    drafts = review.drafts if review is not None else ()
    coding = [
        {"system": system, "code": code, **({"display": shown} if (shown := codes.display_of(system, code)) else {})}
        for system, code in order.codes
        if codes.contains(order.valueset, system, code)
    ]
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "priority": order.priority,
        "code": {"coding": coding, "text": order.text},
        "subject": {"reference": f"Patient/{snapshot.patient_id}"},
        "note": [{"text": order.note}],
    }
    reason_codes: dict[str, dict[str, Any]] = {}
    for draft in drafts:
        for concept in draft.reason_codes:
            reason_codes.setdefault(repr(concept), concept)
    if reason_codes:
        resource["reasonCode"] = list(reason_codes.values())
    references = dict.fromkeys(
        [
            *(reference for draft in drafts for reference in draft.reason_references),
            *(
                reference
                for entry in plan.evidence
                if entry.item.source.resource_type in REASON_TYPES and (reference := entry.item.source.reference)
            ),
        ]
    )
    if references:
        resource["reasonReference"] = [{"reference": reference} for reference in references]
    return resource


def _suggestion(label: str, actions: list[dict[str, Any]], new_uuid: Callable[[], str]) -> Suggestion:
    return {"label": label, "uuid": new_uuid(), "isRecommended": True, "actions": actions}


def _create(
    plan: Plan, order: OrderPlan, snapshot: PatientSnapshot, codes: OrderCodes, review: OrderReview | None
) -> dict[str, Any]:
    return {
        "type": "create",
        "description": f"{order.label} (draft, priority {order.priority})",
        "resource": service_request(plan, order, snapshot, codes, review),
    }


def _delete(draft: DraftOrder) -> dict[str, Any]:
    return {
        "type": "delete",
        "description": f"Remove the draft order {draft.reference} ({draft.concept.display})",
        "resourceId": draft.reference,
    }


def suggest(
    plan: Plan,
    snapshot: PatientSnapshot,
    codes: OrderCodes,
    new_uuid: Callable[[], str],
    *,
    review: OrderReview | None = None,
    style: OrderActions = "spec",
) -> Suggested:
    """The suggestions of ``plan``'s card, fixing the drafts as ``review`` says."""
    behavior: SelectionBehavior = "any" if style == "epic" else "at-most-one"
    order = plan.order
    if order is None or not _orderable(order, codes):
        return Suggested()  # nothing to order, or no verified code to order with: the card still says what to do
    create = _create(plan, order, snapshot, codes, review)
    if review is None:
        return Suggested([_suggestion(order.label, [create], new_uuid)], behavior)
    if review.kind == "raise":
        (draft,) = review.drafts
        update = {
            "type": "update",
            "description": f"Raise the priority of the draft order {draft.reference} to {order.priority}",
            # an update carries the whole resource, not only the changed element
            "resource": {**draft.resource, "priority": order.priority},
        }
        label = f"Raise the draft order's priority to {order.priority}"
        return Suggested([_suggestion(label, [update], new_uuid)], behavior)
    if style == "epic":
        removals = [
            _suggestion(f"Remove the draft order “{draft.concept.display}”", [_delete(draft)], new_uuid)
            for draft in review.drafts
        ]
        return Suggested([_suggestion(order.label, [create], new_uuid), *removals], behavior)
    label = f"Replace the draft with {order.text}, {order.priority}"
    deletes = [_delete(draft) for draft in review.drafts]
    return Suggested([_suggestion(label, [*deletes, create], new_uuid)], behavior)

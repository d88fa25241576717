"""The draft-order review: what the R1/R2 card does with a spine imaging order being written.

NICE NG234 asks for an MRI of the *whole* spine (within 24 h for suspected MSCC, R1;
within 1 week for suspected spinal metastases, R2), and CT of the whole spine only when
MRI is contraindicated (R3). When the clinician is already drafting a spine imaging
order, a card that only suggests *creating* a whole-spine MRI leaves two orders or none.
So, for the card of R1 or R2 that proposes an order (docs/clinical/order-review.md):

* a draft that is another spine test (a single-region or unspecified-extent MRI, a
  whole-spine CT when MRI is not contraindicated, a plain spine X-ray once a verified code
  list exists) is **replaced**: delete the draft,
  create the whole-spine MRI at the rule's priority with the draft's reasons;
* a draft that is the right test at a lower priority is **raised** (an update);
* a draft that is the right test at the right priority (or more urgent) is
  **acknowledged**: the card says so and proposes no order.

Without a spine draft, or for a card with no order to propose (R1 after a recent scan),
the card is unchanged. Pure: drafts and plans in, plans and reviews out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from service.clinical.draftorders import SPINE_IMAGING, DraftOrder, at_least
from service.clinical.rules.base import OrderPlan, Plan
from service.fastinit import fast_init

__all__ = ["REVIEWED_RULES", "OrderReview", "ReviewKind", "apply_review", "review_drafts"]

ReviewKind = Literal["replace", "raise", "acknowledge"]
#: The rules whose card orders whole-spine imaging (docs/clinical/decision-table.md#rules).
REVIEWED_RULES = frozenset({"R1", "R2"})
_CLOCK = {"R1": "as soon as possible and within 24 hours", "R2": "within 1 week"}
# Why a spine test other than the one the rule needs is the wrong one, by its value set.
_WRONG = {
    "mri-spine-region": "it images one region (or an unstated extent) of the spine, and metastases are often at "
    "several levels: NICE asks for the whole spine",
    "mri-spine-whole": "MRI is recorded as contraindicated (R3): CT of the whole spine instead",
    "ct-spine": "CT is the alternative only when MRI is contraindicated, and none is recorded; if MRI is "
    "contraindicated, keep the CT and dismiss this suggestion",
    "xray-spine": "plain X-rays cannot diagnose or rule out spinal metastases or MSCC (NICE)",
}


@fast_init
@dataclass(frozen=True, slots=True)
class OrderReview:
    """What the card does with the drafts: replace them, raise one, or acknowledge one."""

    kind: ReviewKind
    #: replace: every wrong spine draft; raise / acknowledge: the draft that is the right test
    drafts: tuple[DraftOrder, ...]
    #: the order the rule needs (its test and priority)
    needed: OrderPlan


def review_drafts(plan: Plan, drafts: Sequence[DraftOrder]) -> OrderReview | None:
    """The review of ``drafts`` for ``plan``'s card, or ``None`` when it leaves the card as it is."""
    needed = plan.order
    if needed is None or plan.rule.id not in REVIEWED_RULES:
        return None
    spine = [draft for draft in drafts if not draft.groups.isdisjoint(SPINE_IMAGING)]
    right = [draft for draft in spine if needed.valueset in draft.groups]
    if right:
        # The most urgent of them speaks for the session: one right order is enough.
        best = right[0]
        for draft in right[1:]:
            if not at_least(best.priority, draft.priority):
                best = draft
        kind: ReviewKind = "acknowledge" if at_least(best.priority, needed.priority) else "raise"
        return OrderReview(kind, (best,), needed)
    if spine:
        return OrderReview("replace", tuple(spine), needed)
    return None


def _named(draft: DraftOrder) -> str:
    return f"“{draft.concept.display}” ({draft.reference}, priority {draft.priority})"


def _lines(plan: Plan, review: OrderReview) -> tuple[str, ...]:
    needed, clock = review.needed, _CLOCK[plan.rule.id]
    if review.kind == "acknowledge":
        (draft,) = review.drafts
        return (
            f"The draft order {_named(draft)} is the right test at the right priority: sign it "
            f"({clock}); no second order is needed.",
        )
    if review.kind == "raise":
        (draft,) = review.drafts
        return (
            f"The draft order {_named(draft)} is the right test but not urgent enough: raise its priority to "
            f"{needed.priority} ({clock}).",
        )
    return tuple(
        f"Replace the draft order {_named(draft)} with {needed.text}, priority {needed.priority} ({clock}): "
        f"{_why_wrong(draft, needed)}."
        for draft in review.drafts
    )


def _why_wrong(draft: DraftOrder, needed: OrderPlan) -> str:
    for valueset, reason in _WRONG.items():
        if valueset != needed.valueset and valueset in draft.groups:
            return reason
    return "it is not the test the guideline asks for"


def apply_review(plan: Plan, review: OrderReview) -> Plan:
    """``plan`` with the review's advice first among its actions; no order to suggest once acknowledged."""
    return replace(
        plan,
        actions=(*_lines(plan, review), *plan.actions),
        order=None if review.kind == "acknowledge" else plan.order,
    )

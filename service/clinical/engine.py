"""The clinical engine: snapshot → facts → rules → precedence and suppression → cards.

:func:`decide` applies the precedence and suppression of the decision table
(docs/clinical/decision-table.md#precedence-and-suppression) to the rules' verdicts, in this order:

1. every card rule proposes a plan (``CARD_RULES``);
2. R3 turns the MRI of R1/R2 into CT when MRI is contraindicated;
3. R9 rewords or downgrades R1 and suppresses R2 / R6b after recent imaging;
4. precedence: a plan whose superseding rule shows a card is folded into that card's
   detail; the families (MSCC, Pancoast, calcium, NG12) are otherwise independent;
5. R8 adds its spinal line to the NG12 card.

Each rule's outcome (fired / not_fired / suppressed / insufficient_data) goes to the
audit: "suppressed" means its criteria held but its card was folded or withheld.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Protocol

from service.clinical.cards import render_card
from service.clinical.draftorders import read_draft_orders
from service.clinical.elements import RecurringValues
from service.clinical.orderreview import apply_review, review_drafts
from service.clinical.outcome import CardBasis, RuleOutcome, RuleResult, Screening
from service.clinical.patientdata import ImagingEvent
from service.clinical.policy import ClinicalPolicy
from service.clinical.rules import CARD_RULES, RULES, RULES_BY_ID, Given, Plan, derive_facts
from service.clinical.rules.base import Indicator, Truth
from service.clinical.rules.mscc import apply_contraindication
from service.clinical.rules.ng12 import merge_spinal_line, spinal_red_flags
from service.clinical.rules.suppression import WHOLE_SPINE_MRI, apply_recent_imaging
from service.clinical.snapshot_reader import build_snapshot
from service.clinical.suggestions import OrderActions, OrderCodes
from service.clinical.valuesets import Terminology
from service.fastinit import fast_init
from service.fhir.record import PatientRecord

__all__ = ["ClinicalScreener", "Decision", "Library", "card_basis", "decide", "new_uuid4"]


class Library(Terminology, OrderCodes, Protocol):
    """The value-set library as the engine uses it (ValueSetLibrary satisfies it)."""


@fast_init
@dataclass(frozen=True, slots=True)
class Decision:
    """The cards to show, in precedence order, and every rule's outcome."""

    plans: tuple[Plan, ...]
    outcomes: dict[str, RuleResult]


_SEVERITY: tuple[Indicator, ...] = ("info", "warning", "critical")


def _result(truth: Truth) -> RuleResult:
    if truth is None:
        return "insufficient_data"
    return "fired" if truth else "not_fired"


def decide(given: Given) -> Decision:
    """Apply the rules, then precedence and suppression, to ``given``; pure."""
    verdicts = {spec.id: evaluate(given) for spec, evaluate in CARD_RULES}
    outcomes: dict[str, RuleResult] = {rule_id: _result(verdict.truth) for rule_id, verdict in verdicts.items()}
    plans = {rule_id: verdict.plan for rule_id, verdict in verdicts.items() if verdict.plan is not None}
    outcomes["R3"] = _result(apply_contraindication(plans, given))
    recent = apply_recent_imaging(plans, given)
    outcomes["R9"] = _result(recent.truth)
    for rule_id in recent.suppressed:
        outcomes[rule_id] = "suppressed"
    shown = _fold(plans, outcomes)
    for rule_id, reason in recent.suppressed.items():
        family = RULES_BY_ID[rule_id].family
        host = next((plan for plan in shown.values() if plan.rule.family == family), None)
        if host is not None:
            shown[host.rule.id] = replace(host, also=(*host.also, reason))
    outcomes["R8"] = _r8(shown, outcomes, given)
    return Decision(tuple(shown.values()), outcomes)


def _r8(shown: dict[str, Plan], outcomes: dict[str, RuleResult], given: Given) -> RuleResult:
    # R8 is a line on the R6a/R6b card: without that card it cannot show.
    if merge_spinal_line(shown, given):
        return "fired"
    criteria = spinal_red_flags(given)
    if criteria is True and any(outcomes.get(rule_id) == "suppressed" for rule_id in ("R6a", "R6b")):
        return "suppressed"
    if criteria is None and any(rule_id in shown for rule_id in ("R6a", "R6b")):
        return "insufficient_data"
    return "not_fired"


def _fold(plans: dict[str, Plan], outcomes: dict[str, RuleResult]) -> dict[str, Plan]:
    """Show each plan unless a rule superseding it shows a card; then fold it into that card."""
    shown: dict[str, Plan] = {}
    for plan in sorted(plans.values(), key=lambda item: item.rule.rank):
        host = next((rule_id for rule_id in plan.rule.superseded_by if rule_id in shown), None)
        if host is None:
            shown[plan.rule.id] = plan
            continue
        outcomes[plan.rule.id] = "suppressed"
        line = f"Also met – {plan.rule.id} {plan.rule.title}: {plan.summary}"
        card = shown[host]
        # A folded card keeps its urgency: e.g. R1 downgraded to info by a done MRI
        # must not hide a Pancoast warning folded into it.
        indicator = max(card.indicator, plan.indicator, key=_SEVERITY.index)
        shown[host] = replace(
            card, indicator=indicator, also=(*card.also, line), evidence=(*card.evidence, *plan.evidence)
        )
    return shown


def card_basis(plan: Plan) -> CardBasis:
    """The resources ``plan``'s card cites, and the whole-spine MRI among them, as data."""
    references = (entry.item.source.reference for entry in plan.evidence)
    return CardBasis(
        rule_id=plan.rule.id,
        evidence=tuple(dict.fromkeys(reference for reference in references if reference)),
        whole_spine_mri=tuple(
            entry.item.state
            for entry in plan.evidence
            if isinstance(entry.item, ImagingEvent) and WHOLE_SPINE_MRI in entry.item.groups
        ),
    )


@cache
def _outcome(rule_id: str, version: str, result: RuleResult) -> RuleOutcome:
    # Each rule has four outcomes, the same on every call: built once, not per hook call.
    return RuleOutcome(rule_id, version, result)


def new_uuid4() -> str:
    """A random (version 4) UUID as text: for cards and suggestions, several per hook call.

    Written out rather than ``str(uuid.uuid4())``: the UUID class checks and converts
    more than a fresh random value needs, and cost as much as rendering a card line.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class ClinicalScreener:
    """Implements :class:`service.clinical.outcome.Screener`: patient data in, cards out, no I/O."""

    def __init__(
        self,
        valuesets: Library,
        policy: ClinicalPolicy,
        *,
        new_uuid: Callable[[], str] | None = None,
        recurring: RecurringValues | None = None,
        order_actions: OrderActions = "spec",
    ) -> None:
        self._valuesets = valuesets
        self._policy = policy
        self._order_actions: OrderActions = order_actions
        self._new_uuid = new_uuid or new_uuid4
        # One per screener: the codes of one hospital's records recur from patient to patient.
        self._recurring = recurring if recurring is not None else RecurringValues()

    def screen(self, record: PatientRecord, at: datetime) -> Screening:
        result = build_snapshot(record, at, self._valuesets, self._policy, recurring=self._recurring)
        snapshot = result.snapshot
        given = Given(snapshot, self._policy, derive_facts(snapshot, self._policy))
        decision = decide(given)
        # Order hooks: the R1/R2 card fixes a spine imaging order being drafted (orderreview).
        drafts = read_draft_orders(record, self._valuesets, snapshot.at) if record.draft_orders else ()
        cards = []
        for plan in decision.plans:
            review = review_drafts(plan, drafts) if drafts else None
            shown = apply_review(plan, review) if review is not None else plan
            cards.append(
                render_card(shown, snapshot, self._valuesets, self._new_uuid, review=review, style=self._order_actions)
            )
        rules = [_outcome(rule.id, rule.version, decision.outcomes.get(rule.id, "not_fired")) for rule in RULES]
        bases = [card_basis(plan) for plan in decision.plans]
        return Screening(cards=cards, rules=rules, notes=result.notes, bases=bases)

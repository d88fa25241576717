"""What the clinical engine returns for one patient (cards and every rule's result), and the hooks it runs at."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from cds_hooks.models import Card
from service.fastinit import fast_init
from service.fhir.record import PatientRecord

__all__ = ["HOOKS", "CardBasis", "RuleOutcome", "RuleResult", "Screener", "Screening"]

#: The CDS hooks at which every rule is evaluated: patient-view is the widely implemented
#: encounter-time hook; encounter-start fits the intent better; the order hooks catch the
#: moment an imaging order is being written. Each rule's PlanDefinition names them as its
#: triggers, and the service offers one CDS Service per hook.
HOOKS = ("patient-view", "encounter-start", "order-select", "order-sign")

RuleResult = Literal["fired", "not_fired", "suppressed", "insufficient_data"]


@fast_init
@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule's verdict, recorded in the audit trail with the rule's version."""

    rule_id: str
    rule_version: str
    result: RuleResult


@fast_init
@dataclass(frozen=True, slots=True)
class CardBasis:
    """What one card rests on, as data rather than card text: for readers other than an EHR
    (the population worklist), so that they never re-derive what the rules decided."""

    rule_id: str
    #: the resources the card cites as evidence ("Condition/abc"), each once, in card order
    evidence: tuple[str, ...]
    #: the whole-spine MRI the card cites (R9 rewords or downgrades R1 for one): "ordered"
    #: or "done" for each, in card order; empty when the card cites none
    whole_spine_mri: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class Screening:
    cards: Sequence[Card]
    rules: Sequence[RuleOutcome]
    #: data problems met on the way (malformed entries skipped, times without offset),
    #: safe to log: resource types and reasons only, never values
    notes: Sequence[str] = field(default_factory=tuple)
    #: one per card, in card order (screeners that do not say leave it empty)
    bases: Sequence[CardBasis] = field(default_factory=tuple)


class Screener(Protocol):
    """Patient data in, cards out: pure, no I/O."""

    def screen(self, record: PatientRecord, at: datetime) -> Screening: ...

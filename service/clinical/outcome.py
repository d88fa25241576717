"""What the clinical engine returns for one patient: cards and every rule's result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from cds_hooks.models import Card
from service.fhir.record import PatientRecord

__all__ = ["RuleOutcome", "RuleResult", "Screener", "Screening"]

RuleResult = Literal["fired", "not_fired", "suppressed", "insufficient_data"]


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule's verdict, recorded in the audit trail with the rule's version."""

    rule_id: str
    rule_version: str
    result: RuleResult


@dataclass(frozen=True, slots=True)
class Screening:
    cards: Sequence[Card]
    rules: Sequence[RuleOutcome]
    #: data problems met on the way (malformed entries skipped, times without offset),
    #: safe to log: resource types and reasons only, never values
    notes: Sequence[str] = field(default_factory=tuple)


class Screener(Protocol):
    """Patient data in, cards out: pure, no I/O."""

    def screen(self, record: PatientRecord, at: datetime) -> Screening: ...

"""The vocabulary every rule shares: citations, rule specs, three-valued facts, card plans.

A rule is a pure function from :class:`~service.clinical.rules.facts.Given` to a
:class:`Verdict`. Its :class:`RuleSpec` carries the identity (id, version, title), the
:class:`Citation` list that feeds the card's source and links *and* the PlanDefinition's
``relatedArtifact``, and the inputs it reads (value sets, date of birth) that feed the
HTI-1 source attributes. One structure, three outputs: they cannot drift apart.

Facts are three-valued (``True``/``False``/``None`` = unknown, Kleene logic): a fact is
unknown when the data that could make it true was not available (a part of the record
that could not be read, a concept group with no code list). A rule whose answer is unknown reports
``insufficient_data`` instead of silently not firing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.clinical.patientdata import Item
from service.clinical.recordparts import RecordPart
from service.fastinit import fast_init

__all__ = [
    "Citation",
    "Evidence",
    "Fact",
    "Indicator",
    "OrderPlan",
    "Plan",
    "Priority",
    "RuleSpec",
    "Truth",
    "Verdict",
    "all_of",
    "any_of",
    "negate",
]

Truth = bool | None
Indicator = Literal["info", "warning", "critical"]
Priority = Literal["routine", "urgent", "asap", "stat"]


# ``in`` compares by identity first and a Truth is only ever True, False or None: the
# membership tests below are exact, without a generator per call.


def all_of(*values: Truth) -> Truth:
    """Kleene AND: false wins, then unknown."""
    if False in values:
        return False
    return None if None in values else True


def any_of(*values: Truth) -> Truth:
    """Kleene OR: true wins, then unknown."""
    if True in values:
        return True
    return None if None in values else False


def negate(value: Truth) -> Truth:
    return None if value is None else not value


@fast_init
@dataclass(frozen=True, slots=True)
class Citation:
    """A source of evidence: a short label for cards, the full reference for PlanDefinitions."""

    #: short, names the guideline and recommendation, e.g. "NICE NG234 (2023) rec 1.5.2"
    label: str
    #: full bibliographic citation (HTI-1 attribute 1)
    text: str
    url: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class RuleSpec:
    """Identity, evidence and inputs of one rule of docs/clinical/decision-table.md#rules."""

    id: str
    version: str
    #: ISO date of this version (PlanDefinition.date; HTI-1 attribute 4)
    date: str
    title: str
    #: the rule's condition in words (PlanDefinition.description and action.condition)
    description: str
    #: the same condition over the derived facts (docs/clinical/decision-table.md#derived-facts)
    logic: str
    #: strength of the evidence (docs/clinical/evidence.md#evidence-for-the-rules)
    strength: str
    #: the card's indicator; ``None`` for rules that modify other rules' cards (R3, R8, R9)
    indicator: Indicator | None
    #: "family" (docs/clinical/decision-table.md#precedence-and-suppression): one card per
    #: family; a rule suppressed by R9 is mentioned on the family's card if one is shown
    family: str
    #: precedence: lower shows first; a card is folded into a shown card of any
    #: rule in ``superseded_by``
    rank: int
    superseded_by: tuple[str, ...]
    #: the first citation is the card's source
    citations: tuple[Citation, ...]
    #: ValueSet ids the rule reads (PlanDefinition dataRequirement)
    valuesets: tuple[str, ...]
    #: the parts of the record the rule reads; those that could not be read are listed on its card
    reads: tuple[RecordPart, ...] = (RecordPart.CONDITIONS,)
    #: HTI-1 attribute 11: the rule uses the patient's date of birth (age)
    uses_birth_date: bool = False
    #: HTI-1 attribute 13: USCDI health status assessment inputs (e.g. smoking status)
    health_status_inputs: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class Evidence:
    """A piece of the patient's data that made a fact true, as a card lists it."""

    item: Item
    #: what it stands for in the rule, e.g. "neurological sign"
    role: str
    #: a formatted value, e.g. "12.5 mg/dL (adjusted 3.12 mmol/L)"
    value: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Fact:
    """A derived fact with the evidence for it, or why it could not be decided.

    docs/clinical/decision-table.md#derived-facts
    """

    truth: Truth
    evidence: tuple[Evidence, ...] = ()
    #: when not true: data that could have made it true but was unavailable
    unknown: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class OrderPlan:
    """A draft ServiceRequest to suggest; codes are taken from ``valueset`` when present there."""

    label: str
    valueset: str
    #: preferred (system, code) pairs in order: LOINC first, then SNOMED CT
    codes: tuple[tuple[str, str], ...]
    text: str
    priority: Priority
    #: instruction for the performer (protocol, time frame)
    note: str


@fast_init
@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a card will say, before it becomes a CDS Hooks Card."""

    rule: RuleSpec
    summary: str
    indicator: Indicator
    actions: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    #: facts that are not resources (age, counts), listed first under "why"
    context: tuple[str, ...] = ()
    #: data that was missing or unknown and could change the advice
    missing: tuple[str, ...] = ()
    #: lower-ranked or modifying rules folded into this card
    also: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    order: OrderPlan | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule's answer: its truth and, when true, the card it proposes."""

    rule: RuleSpec
    truth: Truth
    plan: Plan | None = None

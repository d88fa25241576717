"""Turn a rule's :class:`~service.clinical.rules.base.Plan` into a CDS Hooks Card.

The card states the action and its time frame in the summary, lists in the detail the
evidence that fired the rule and the data that was missing, names the guideline in
``source`` (with the rule id in ``source.topic``, DESIGN.md), links to the guideline,
and suggests one draft ServiceRequest (R4) when the rule has an order, or the fix of a
draft order being written (:mod:`service.clinical.suggestions`).

It is built with the :mod:`cds_hooks.models` classes, which enforce the specification.
The parts that only depend on the rule (source, links, override reasons) are validated
once per rule and shared by its cards; what depends on the patient is validated with
each card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import tzinfo
from functools import cache

from cds_hooks.models import Card, Coding, Link, Source
from service.clinical.orderreview import OrderReview
from service.clinical.patientdata import Finding, ImagingEvent, Item, Measurement, SmokingStatus
from service.clinical.rules.base import Evidence, Plan, RuleSpec
from service.clinical.rules.gaps import excluded_lines, gap_lines
from service.clinical.snapshot import PatientSnapshot
from service.clinical.suggestions import OrderActions, OrderCodes, suggest
from service.fastinit import fast_init

__all__ = ["OVERRIDE_REASONS", "OVERRIDE_SYSTEM", "RULES_SYSTEM", "OrderCodes", "render_card"]

RULES_SYSTEM = "https://fhir.mscc-cds.org/CodeSystem/mscc-rules"
OVERRIDE_SYSTEM = "https://fhir.mscc-cds.org/CodeSystem/override-reasons"
OVERRIDE_REASONS = (
    ("already-imaged", "Already imaged"),
    ("patient-declined", "Patient declined"),
    ("not-clinically-indicated", "Not clinically indicated"),
    ("end-of-life-care", "End-of-life care"),
    ("other", "Other"),
)
# More items than this per role would bury the card; the rest are counted.
_MAX_PER_ROLE = 3
# "<140-character summary message" (CDS Hooks, Card attributes)
_SUMMARY_MAX = 139
# Markdown's special characters in text from the record or the rules, each escaped with a
# backslash; the backslash first, so that the escapes added after it are not escaped again.
_MARKDOWN = "\\`*_<>[]"


def _summary(text: str) -> str:
    # Summaries are short by construction; a value from the record (an absurd lab
    # result) must still never make the card invalid.
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def _escape(text: str) -> str:
    for char in _MARKDOWN:
        if char in text:
            text = text.replace(char, "\\" + char)
    return text


def _when(item: Item, zone: tzinfo) -> str:
    if isinstance(item, Finding):
        parts = []
        if item.onset:
            parts.append(f"onset {item.onset.display(zone)}")
        elif item.recorded:
            parts.append(f"recorded {item.recorded.display(zone)}")
        if item.clinical_status:
            parts.append(item.clinical_status)
        if item.preliminary:
            parts.append("preliminary, not yet signed off")
        return ", ".join(parts)
    if isinstance(item, Measurement):
        return item.when.display(zone)
    if isinstance(item, ImagingEvent):
        state = "done" if item.state == "done" else "requested"
        return f"{state} {item.when.display(zone)}" if item.when else state
    return item.when.display(zone) if item.when else ""


def _label(item: Item) -> str:
    if isinstance(item, SmokingStatus):
        return item.answer.display if item.answer else "smoking status"
    return item.concept.display


def _evidence_lines(evidence: Iterable[Evidence], zone: tzinfo) -> list[str]:
    # One line per resource, with every role it plays (a thoracic back pain is both
    # "spinal pain" and a "thoracic or cervical" feature); at most _MAX_PER_ROLE per
    # leading role.
    grouped: dict[int, tuple[Item, list[str], list[str]]] = {}
    for entry in evidence:
        item, roles, values = grouped.setdefault(id(entry.item), (entry.item, [], []))
        if entry.role not in roles:
            roles.append(entry.role)
        if entry.value and entry.value not in values:
            values.append(entry.value)
    lines: list[str] = []
    per_role: dict[str, int] = {}
    for item, roles, values in grouped.values():
        per_role[roles[0]] = per_role.get(roles[0], 0) + 1
        if per_role[roles[0]] > _MAX_PER_ROLE:
            continue
        details = [text for text in (_when(item, zone), *values) if text]
        suffix = f" ({'; '.join(details)})" if details else ""
        role = "; ".join(roles)
        role = role[:1].upper() + role[1:]
        lines.append(f"- {_escape(role)}: {item.source.resource_type} “{_escape(_label(item))}”{_escape(suffix)}")
    lines.extend(
        f"- {_escape(role[:1].upper() + role[1:])}: {count - _MAX_PER_ROLE} more not listed"
        for role, count in per_role.items()
        if count > _MAX_PER_ROLE
    )
    return lines


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _detail(plan: Plan, snapshot: PatientSnapshot) -> str:
    sections: list[tuple[str, list[str]]] = [
        ("Why", [f"- {_escape(line)}" for line in plan.context] + _evidence_lines(plan.evidence, snapshot.zone)),
        ("Recommended", [f"- {_escape(line)}" for line in plan.actions]),
        ("Also", [f"- {_escape(line)}" for line in _unique(plan.also)]),
        (
            "Missing or unknown data",
            [
                f"- {_escape(line[:1].upper() + line[1:])}"
                for line in _unique((*plan.missing, *gap_lines(snapshot, plan.rule.reads), *excluded_lines(snapshot)))
            ],
        ),
        ("Notes", [f"- {_escape(line)}" for line in plan.caveats]),
    ]
    body = "\n\n".join(f"**{title}**\n\n" + "\n".join(lines) for title, lines in sections if lines)
    rule = plan.rule
    return f"{body}\n\n_Rule {rule.id} ({_escape(rule.title)}), version {rule.version}._"


@fast_init
@dataclass(frozen=True, slots=True)
class _RuleParts:
    """What every card of one rule shows alike, validated once."""

    source: Source
    links: tuple[Link, ...]
    override_reasons: tuple[Coding, ...]


@cache
def _rule_parts(rule: RuleSpec) -> _RuleParts:
    primary = rule.citations[0]
    urls: dict[str, str] = {}
    for citation in rule.citations:
        if citation.url:
            urls.setdefault(citation.url, citation.label)
    return _RuleParts(
        source=Source(
            label=primary.label,
            url=primary.url,
            topic=Coding(system=RULES_SYSTEM, code=rule.id, display=rule.title),
        ),
        links=tuple(Link(label=label, url=url, type="absolute") for url, label in urls.items()),
        override_reasons=tuple(
            Coding(system=OVERRIDE_SYSTEM, code=code, display=shown) for code, shown in OVERRIDE_REASONS
        ),
    )


def render_card(
    plan: Plan,
    snapshot: PatientSnapshot,
    codes: OrderCodes,
    new_uuid: Callable[[], str],
    *,
    review: OrderReview | None = None,
    style: OrderActions = "spec",
) -> Card:
    """The CDS Hooks Card for ``plan``; ``new_uuid`` names the card and its suggestions.

    ``review``: what the card does with the hook's draft orders (:mod:`service.clinical.orderreview`);
    ``style``: how its suggestions are rendered (:mod:`service.clinical.suggestions`).
    """
    parts = _rule_parts(plan.rule)
    suggested = suggest(plan, snapshot, codes, new_uuid, review=review, style=style)
    # Validated as one JSON object; the shared parts are model instances already, which
    # pydantic takes as they are.
    return Card.model_validate(
        {
            "uuid": new_uuid(),
            "summary": _summary(plan.summary),
            "detail": _detail(plan, snapshot),
            "indicator": plan.indicator,
            "source": parts.source,
            "suggestions": suggested.suggestions,
            "selectionBehavior": suggested.selection_behavior,
            "overrideReasons": list(parts.override_reasons),
            "links": list(parts.links) or None,
        }
    )

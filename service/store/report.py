"""The alert-fatigue report: per rule, how many cards were shown and what clinicians did with them.

The cohort is the cards shown in a period (by the audit's ``recorded_at``); each card's
outcome is its latest feedback by ``outcomeTimestamp``, whenever it arrived, so every
shown card is exactly one of accepted, overridden or without feedback, and the three
add up to the cards shown. Override reasons are those of the overriding feedback.
Feedback on cards the audit trail did not know is counted apart (by arrival time).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.tables import audit_cards, audit_events, audit_rule_results, feedback

__all__ = ["OverrideReasonCount", "Report", "RuleSummary", "build_report", "format_report"]


@dataclass(frozen=True, slots=True)
class OverrideReasonCount:
    code: str | None
    system: str | None
    display: str | None
    cards: int

    @property
    def label(self) -> str:
        if self.code is None:
            return "no reason given"
        return f"{self.display} [{self.code}]" if self.display else self.code


@dataclass(frozen=True, slots=True)
class RuleSummary:
    rule_id: str
    #: invocations in which the rule was evaluated (any result)
    evaluated: int
    shown: int
    accepted: int
    overridden: int
    reasons: tuple[OverrideReasonCount, ...] = field(default_factory=tuple)

    @property
    def without_feedback(self) -> int:
        return self.shown - self.accepted - self.overridden

    @property
    def override_rate(self) -> float | None:
        """Overridden cards as a share of the cards shown."""
        return self.overridden / self.shown if self.shown else None


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    rules: tuple[RuleSummary, ...]
    #: feedback received in the period on cards missing from the audit trail
    unknown_card_feedback: int

    @property
    def total(self) -> RuleSummary:
        return RuleSummary(
            rule_id="Total",
            evaluated=sum(rule.evaluated for rule in self.rules),
            shown=sum(rule.shown for rule in self.rules),
            accepted=sum(rule.accepted for rule in self.rules),
            overridden=sum(rule.overridden for rule in self.rules),
        )


async def build_report(engine: AsyncEngine, *, since: datetime, until: datetime) -> Report:
    """The report for audit records with ``since <= recorded_at < until`` (aware datetimes)."""
    in_period = audit_events.c.recorded_at >= since, audit_events.c.recorded_at < until
    shown = (
        select(audit_cards.c.rule_id, audit_cards.c.card_uuid)
        .join(audit_events, audit_events.c.audit_id == audit_cards.c.audit_id)
        .where(*in_period)
        .subquery("shown")
    )
    ranked = (
        select(
            feedback.c.card_uuid,
            feedback.c.outcome,
            feedback.c.override_reason_system,
            feedback.c.override_reason_code,
            feedback.c.override_reason_display,
            func.row_number()
            .over(
                partition_by=feedback.c.card_uuid,
                order_by=(feedback.c.outcome_timestamp.desc(), feedback.c.feedback_id.desc()),
            )
            .label("recency"),
        )
        .where(feedback.c.card_uuid.in_(select(shown.c.card_uuid)))
        .subquery("ranked")
    )
    latest = select(ranked).where(ranked.c.recency == 1).subquery("latest")
    cards_with_outcome = shown.outerjoin(latest, latest.c.card_uuid == shown.c.card_uuid)

    outcomes = (
        select(
            shown.c.rule_id,
            func.count(),
            func.count(case((latest.c.outcome == "accepted", 1))),
            func.count(case((latest.c.outcome == "overridden", 1))),
        )
        .select_from(cards_with_outcome)
        .group_by(shown.c.rule_id)
    )
    reasons = (
        select(
            shown.c.rule_id,
            latest.c.override_reason_system,
            latest.c.override_reason_code,
            func.max(latest.c.override_reason_display),
            func.count(),
        )
        .select_from(cards_with_outcome)
        .where(latest.c.outcome == "overridden")
        .group_by(shown.c.rule_id, latest.c.override_reason_system, latest.c.override_reason_code)
    )
    evaluations = (
        select(audit_rule_results.c.rule_id, func.count())
        .join(audit_events, audit_events.c.audit_id == audit_rule_results.c.audit_id)
        .where(*in_period)
        .group_by(audit_rule_results.c.rule_id)
    )
    unknown = select(func.count()).where(
        feedback.c.known_card.is_(False), feedback.c.received_at >= since, feedback.c.received_at < until
    )

    async with engine.connect() as connection:
        outcome_rows = (await connection.execute(outcomes)).all()
        reason_rows = (await connection.execute(reasons)).all()
        evaluation_rows = (await connection.execute(evaluations)).all()
        unknown_count = (await connection.execute(unknown)).scalar_one()

    reasons_by_rule: dict[str, list[OverrideReasonCount]] = defaultdict(list)
    for rule_id, system, code, display, count in reason_rows:
        reasons_by_rule[rule_id].append(OverrideReasonCount(code=code, system=system, display=display, cards=count))
    evaluated: dict[str, int] = dict(evaluation_rows)
    counts = {rule_id: (shown_n, accepted, overridden) for rule_id, shown_n, accepted, overridden in outcome_rows}
    rules = tuple(
        RuleSummary(
            rule_id=rule_id,
            evaluated=evaluated.get(rule_id, 0),
            shown=counts.get(rule_id, (0, 0, 0))[0],
            accepted=counts.get(rule_id, (0, 0, 0))[1],
            overridden=counts.get(rule_id, (0, 0, 0))[2],
            reasons=tuple(sorted(reasons_by_rule[rule_id], key=lambda reason: (-reason.cards, reason.label))),
        )
        for rule_id in sorted(evaluated.keys() | counts.keys(), key=rule_order)
    )
    return Report(since=since, until=until, rules=rules, unknown_card_feedback=unknown_count)


def rule_order(rule_id: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order: R2 < R2b < R10 (numbers compare as numbers)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", rule_id))


_COLUMNS = ("Rule", "Evaluated", "Shown", "Accepted", "Overridden", "No feedback", "Overridden %")


def format_report(report: Report, *, period: str) -> str:
    """The report as a plain-text table (one row per rule, override reasons indented below)."""

    def cells(rule: RuleSummary) -> tuple[str, ...]:
        rate = f"{100 * rule.override_rate:.1f}" if rule.override_rate is not None else "-"
        numbers = (rule.evaluated, rule.shown, rule.accepted, rule.overridden, rule.without_feedback)
        return (rule.rule_id, *(str(number) for number in numbers), rate)

    rows = [cells(rule) for rule in (*report.rules, report.total)]
    widths = [max(len(row[index]) for row in (_COLUMNS, *rows)) for index in range(len(_COLUMNS))]

    def line(values: tuple[str, ...]) -> str:
        first = values[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(values[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    out = [
        f"MSCC CDS alert-fatigue report: cards shown {period}",
        "Outcome of a card = its latest feedback; reasons are those of the overriding feedback.",
        "",
        line(_COLUMNS),
        line(tuple("-" * width for width in widths)),
    ]
    for rule, row in zip(report.rules, rows, strict=False):
        out.append(line(row))
        out.extend(f"    overridden: {reason.label}: {reason.cards}" for reason in rule.reasons)
    out.append(line(tuple("-" * width for width in widths)))
    out.append(line(rows[-1]))
    out.append("")
    out.append(f"Feedback received in the period on cards not in the audit trail: {report.unknown_card_feedback}")
    return "\n".join(out) + "\n"

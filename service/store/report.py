"""The alert-fatigue report: per rule, how many cards were shown and what clinicians did with them.

The cohort is the cards shown in a period (by the audit's ``recorded_at``); each card's
outcome is its latest feedback by ``outcomeTimestamp``, whenever it arrived, so every
shown card is exactly one of accepted, overridden or without feedback, and the three
add up to the cards shown. Override reasons are those of the overriding feedback.
Feedback on cards the audit trail did not know is counted apart (by arrival time).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clinical.cards import OVERRIDE_REASONS, OVERRIDE_SYSTEM
from service.reporting.weeks import monday, weeks_from_to
from service.store.tables import audit_cards, audit_events, audit_rule_results, feedback

__all__ = [
    "NO_REASON",
    "OverrideReasonCount",
    "Report",
    "RuleSummary",
    "WeekSummary",
    "build_report",
    "format_report",
    "reason_display",
]

NO_REASON = "no reason given"
_CATALOGUE = dict(OVERRIDE_REASONS)


def reason_display(system: str | None, code: str | None, display: str | None) -> str:
    """What a person reads for an override reason: the display sent, else the service's own, never a bare code.

    Clients often send only the code of one of the reasons the card offered; the card's
    own display is then the one to show. A code from elsewhere with no display is shown
    for what it is.
    """
    if code is None:
        return NO_REASON
    if display:
        return display
    if system == OVERRIDE_SYSTEM and code in _CATALOGUE:
        return _CATALOGUE[code]
    return f"unlisted reason (code {code})"


@dataclass(frozen=True, slots=True)
class OverrideReasonCount:
    code: str | None
    system: str | None
    display: str | None
    cards: int

    @property
    def label(self) -> str:
        """The display with the code, for the text table (the HTML shows the display alone)."""
        if self.code is None:
            return NO_REASON
        return f"{self.shown_as} [{self.code}]"

    @property
    def shown_as(self) -> str:
        return reason_display(self.system, self.code, self.display)


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
class WeekSummary:
    """The cards shown in one week (by the audit's ``recorded_at``, UTC) and their outcomes."""

    #: the week's Monday
    week: date
    #: rule id -> cards shown
    shown: Mapping[str, int]
    accepted: int
    overridden: int
    #: reason as shown to a person (:func:`reason_display`) -> cards overridden with it
    reasons: Mapping[str, int]

    @property
    def total_shown(self) -> int:
        return sum(self.shown.values())

    @property
    def without_feedback(self) -> int:
        return self.total_shown - self.accepted - self.overridden

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.total_shown if self.total_shown else None


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    rules: tuple[RuleSummary, ...]
    #: feedback received in the period on cards missing from the audit trail
    unknown_card_feedback: int
    #: every week of the period, those without cards included
    weeks: tuple[WeekSummary, ...] = ()

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
        select(audit_cards.c.rule_id, audit_cards.c.card_uuid, audit_events.c.recorded_at)
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
    per_card = select(
        shown.c.recorded_at,
        shown.c.rule_id,
        latest.c.outcome,
        latest.c.override_reason_system,
        latest.c.override_reason_code,
        latest.c.override_reason_display,
    ).select_from(cards_with_outcome)
    unknown = select(func.count()).where(
        feedback.c.known_card.is_(False), feedback.c.received_at >= since, feedback.c.received_at < until
    )

    async with engine.connect() as connection:
        outcome_rows = (await connection.execute(outcomes)).all()
        reason_rows = (await connection.execute(reasons)).all()
        evaluation_rows = (await connection.execute(evaluations)).all()
        unknown_count = (await connection.execute(unknown)).scalar_one()
        weeks = _Weeks(since, until)
        # One row per card shown, streamed: a year of a busy service need not fit in memory at once.
        async for row in await connection.stream(per_card):
            weeks.add(*row)

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
    return Report(since=since, until=until, rules=rules, unknown_card_feedback=unknown_count, weeks=weeks.summaries())


class _Weeks:
    """Counts per week of the cards shown, as :func:`build_report` streams them."""

    def __init__(self, since: datetime, until: datetime) -> None:
        # ``until`` is exclusive: its own week counts only if some of it is in the period.
        last = until.astimezone(UTC) - _JUST_BEFORE
        self._weeks = weeks_from_to(since.astimezone(UTC), last)
        self._shown: Counter[tuple[date, str]] = Counter()
        self._outcomes: Counter[tuple[date, str]] = Counter()
        self._reasons: Counter[tuple[date, str | None, str | None]] = Counter()
        #: a reason's display, from any feedback that sent one (as the per-rule counts take it)
        self._displays: dict[tuple[str | None, str | None], str] = {}

    def add(
        self,
        recorded_at: datetime,
        rule_id: str,
        outcome: str | None,
        system: str | None,
        code: str | None,
        display: str | None,
    ) -> None:
        week = monday(recorded_at.astimezone(UTC))
        self._shown[(week, rule_id)] += 1
        if outcome is not None:
            self._outcomes[(week, outcome)] += 1
        if outcome == "overridden":
            self._reasons[(week, system, code)] += 1
            if display:
                self._displays[(system, code)] = max(display, self._displays.get((system, code), display))

    def summaries(self) -> tuple[WeekSummary, ...]:
        rules = sorted({rule for _, rule in self._shown}, key=rule_order)
        reasons: dict[date, Counter[str]] = {week: Counter() for week in self._weeks}
        for (week, system, code), count in self._reasons.items():
            reasons[week][reason_display(system, code, self._displays.get((system, code)))] += count
        return tuple(
            WeekSummary(
                week=week,
                shown={rule: self._shown[(week, rule)] for rule in rules if self._shown[(week, rule)]},
                accepted=self._outcomes[(week, "accepted")],
                overridden=self._outcomes[(week, "overridden")],
                reasons=dict(sorted(reasons[week].items())),
            )
            for week in self._weeks
        )


def rule_order(rule_id: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order: R2 < R2b < R10 (numbers compare as numbers)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", rule_id))


_JUST_BEFORE = timedelta(microseconds=1)
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

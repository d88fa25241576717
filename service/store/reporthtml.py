"""The alert-fatigue report as one self-contained HTML file, in the form of the shadow-mode report.

What a clinical safety committee reads about the live service: cards shown per rule and
week, the share overridden each week, and why (the reasons' displays, as the clinician
saw them on the card), then the whole period per rule. The plots and tables come from
:mod:`service.reporting`, as the shadow-mode report's do.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from service.reporting.page import html_page, html_table, share
from service.reporting.svg import rate_line, stacked_columns
from service.store.report import Report

__all__ = ["render_report_html"]

#: Reasons beyond these are summed into "other reasons": the committee looks for the big ones,
#: and each plotted reason keeps a colour of its own.
_MAX_REASONS = 7
_OTHER = "other reasons"


def _reason_series(report: Report) -> list[str]:
    totals: Counter[str] = Counter()
    for week in report.weeks:
        totals.update(week.reasons)
    ranked = [label for label, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]
    return ranked if len(ranked) <= _MAX_REASONS else [*ranked[: _MAX_REASONS - 1], _OTHER]


def render_report_html(report: Report, *, period: str) -> str:
    """The page for ``report``; ``period`` is how the period is named in its title."""
    weeks = [week.week.isoformat() for week in report.weeks]
    rules = [rule.rule_id for rule in report.rules if rule.shown]
    shown = {rule: [week.shown.get(rule, 0) for week in report.weeks] for rule in rules}
    reasons = _reason_series(report)
    named = set(reasons) - {_OTHER}
    reason_counts = {
        label: [
            sum(count for name, count in week.reasons.items() if name not in named)
            if label == _OTHER
            else week.reasons.get(label, 0)
            for week in report.weeks
        ]
        for label in reasons
    }
    sections = [
        f"<h1>MSCC CDS alert fatigue: cards shown {escape(period)}</h1>",
        '<p class="note">Every card the service showed in the period, from its audit trail, by the week it was '
        "shown (weeks start on Monday, UTC). A card's outcome is its latest feedback, whenever it arrived: "
        "accepted, overridden or none yet. Override reasons are those the clinician chose on the card.</p>",
        "<h2>Cards shown per week, by rule</h2>",
        stacked_columns(
            "cards-per-week",
            "Cards shown per week, by rule",
            weeks,
            shown,
            "cards shown",
            empty="no card was shown in this period",
        ),
        html_table(
            ["Week (Monday)", *rules, "Total"],
            [
                (week.week.isoformat(), *(week.shown.get(rule, 0) for rule in rules), week.total_shown)
                for week in report.weeks
            ],
        ),
        "<h2>Overrides per week</h2>",
        rate_line(
            "override-rate",
            "Share of the week's cards overridden",
            weeks,
            [week.override_rate for week in report.weeks],
            "overridden",
            "all rules",
            empty="no card was shown in this period",
        ),
        html_table(
            ["Week (Monday)", "Shown", "Accepted", "Overridden", "No feedback", "Overridden %"],
            [
                (
                    week.week.isoformat(),
                    week.total_shown,
                    week.accepted,
                    week.overridden,
                    week.without_feedback,
                    share(week.override_rate),
                )
                for week in report.weeks
            ],
        ),
        "<h2>Override reasons per week</h2>",
        stacked_columns(
            "override-reasons",
            "Cards overridden per week, by reason",
            weeks,
            reason_counts,
            "cards overridden",
            empty="no card was overridden in this period",
        ),
        html_table(
            ["Week (Monday)", *reasons, "Overridden"],
            [
                (week.week.isoformat(), *(counts[index] for counts in reason_counts.values()), week.overridden)
                for index, week in enumerate(report.weeks)
            ],
        ),
        "<h2>The whole period, per rule</h2>",
        html_table(
            ["Rule", "Evaluated", "Shown", "Accepted", "Overridden", "No feedback", "Overridden %"],
            [
                (
                    rule.rule_id,
                    rule.evaluated,
                    rule.shown,
                    rule.accepted,
                    rule.overridden,
                    rule.without_feedback,
                    share(rule.override_rate),
                )
                for rule in (*report.rules, report.total)
            ],
        ),
        html_table(
            ["Rule", "Override reason", "Cards"],
            [(rule.rule_id, reason.shown_as, reason.cards) for rule in report.rules for reason in rule.reasons],
        ),
        f'<p class="note">Evaluated: hook calls in which the rule was evaluated, whatever its result. Feedback '
        f"received in the period on cards not in the audit trail: {report.unknown_card_feedback:,}.</p>",
    ]
    return html_page(f"MSCC CDS alert fatigue: {period}", sections)

"""The alert-fatigue report as a PNG: per rule, cards shown split by what clinicians did.

Left: one stacked bar per rule (accepted, overridden, no feedback; the bar's length is
the cards shown). Right, when any card was overridden: the override reasons across all
rules. Colours are from the Okabe-Ito palette, distinguishable with colour blindness.
matplotlib is imported here only, with the Agg backend: no display is needed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from service.store.report import Report, RuleSummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["render_chart"]

_ACCEPTED = "#009E73"
_OVERRIDDEN = "#D55E00"
_NO_FEEDBACK = "#BBBBBB"
_REASON = "#E69F00"
#: Reasons beyond these are summed into "other": the committee looks for the big ones.
_MAX_REASONS = 10


def render_chart(report: Report, path: Path, *, period: str) -> None:
    """Write the chart of ``report`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    reasons = _reason_totals(report)
    rules = list(reversed(report.rules))  # barh draws bottom-up; the first rule belongs on top
    height = max(3.5, 1.8 + 0.55 * max(len(rules), len(reasons)))
    figure, axes = pyplot.subplots(
        1, 2 if reasons else 1, figsize=(13 if reasons else 8, height), squeeze=False, layout="constrained"
    )
    try:
        figure.suptitle(f"MSCC CDS alert fatigue: cards shown {period}", fontsize=13)
        _draw_outcomes(axes[0][0], rules)
        if reasons:
            _draw_reasons(axes[0][1], reasons)
        figure.savefig(path, format="png", dpi=120)
    finally:
        pyplot.close(figure)


def _draw_outcomes(ax: Axes, summaries: list[RuleSummary]) -> None:
    from matplotlib.ticker import MaxNLocator

    labels = [rule.rule_id for rule in summaries]
    ax.set_title("Outcome of each card shown, per rule")
    ax.set_xlabel("cards shown")
    if not summaries:
        ax.text(0.5, 0.5, "No rule was evaluated in this period", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    left = [0] * len(summaries)
    for name, colour, values in (
        ("accepted", _ACCEPTED, [rule.accepted for rule in summaries]),
        ("overridden", _OVERRIDDEN, [rule.overridden for rule in summaries]),
        ("no feedback", _NO_FEEDBACK, [rule.without_feedback for rule in summaries]),
    ):
        ax.barh(labels, values, left=left, color=colour, label=name, edgecolor="white")
        left = [start + value for start, value in zip(left, values, strict=True)]
    widest = max(left) or 1
    # The numbers go beside the bar, never inside it: a segment of 1 card among 1,000 has no
    # room for its label, and two narrow segments' labels would overlap.
    for y, (rule, total) in enumerate(zip(summaries, left, strict=True)):
        text = (
            f"{total} shown: {rule.accepted} accepted, {rule.overridden} overridden ({100 * rule.override_rate:.0f}%)"
            if rule.override_rate is not None
            else "none shown"
        )
        ax.text(total + widest * 0.01, y, text, va="center", fontsize=9)
    ax.set_xlim(0, widest * 1.9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Below the axis, where it can never hide a bar.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _draw_reasons(ax: Axes, reasons: list[tuple[str, int]]) -> None:
    from matplotlib.ticker import MaxNLocator

    labels = [label for label, _ in reversed(reasons)]
    values = [count for _, count in reversed(reasons)]
    bars = ax.barh(labels, values, color=_REASON)
    ax.bar_label(bars, padding=3, fontsize=9)
    ax.set_title("Override reasons, all rules")
    ax.set_xlabel("cards overridden")
    ax.set_xlim(0, max(values) * 1.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)


def _reason_totals(report: Report) -> list[tuple[str, int]]:
    totals: Counter[str] = Counter()
    for rule in report.rules:
        for reason in rule.reasons:
            totals[reason.shown_as] += reason.cards
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) <= _MAX_REASONS:
        return ranked
    head, tail = ranked[: _MAX_REASONS - 1], ranked[_MAX_REASONS - 1 :]
    return [*head, ("other reasons", sum(count for _, count in tail))]

"""The shadow-mode report as one self-contained HTML file: inline SVG plots, tables, no script."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import TYPE_CHECKING

from service.reporting.page import html_page, html_table, share
from service.reporting.svg import stacked_columns

if TYPE_CHECKING:
    from service.population.shadow import ShadowReport

__all__ = ["render_html"]


def _duration(step: timedelta) -> str:
    hours = int(step.total_seconds() // 3600)
    return f"{hours // 24} day(s)" if hours % 24 == 0 else f"{hours} hour(s)"


def render_html(report: ShadowReport) -> str:
    from service.population.shadow import LEAD_BINS, SPINAL_RULES

    weeks = [week.isoformat() for week in report.weeks]
    rules = report.rules
    load = {rule: [report.new_cards.get((week, rule), 0) for week in report.weeks] for rule in rules}
    alert_plot = stacked_columns("alert-load", "New cards per week, by rule", weeks, load, "new cards")
    bins = ["no card", "card after event", *(label for label, _ in LEAD_BINS)]
    events = sorted({item.event for item in report.lead_times})
    lead = {
        event: [sum(1 for item in report.lead_times if item.event == event and item.bin == b) for b in bins]
        for event in events
    }
    lead_plot = stacked_columns(
        "lead-time",
        "Time from the first spinal card to the event",
        bins,
        lead or {"no event": [0] * len(bins)},
        "patients",
    )
    problems = report.tally.render()
    sections = [
        f"<h1>MSCC screening in shadow mode: {escape(report.start.date().isoformat())} to "
        f"{escape(report.end.date().isoformat())}</h1>",
        f'<p class="note">{len(report.times)} replays, one every {escape(_duration(report.step))}; '
        f"{report.tally.screened:,} patients screened from {len(report.folder.files)} export files; "
        f"knowledge version {escape(report.knowledge_version)}. The hook's own screener was replayed at each "
        "time point; a card counts as new when it was not showing at the previous one.</p>",
        "<h2>Alert load</h2>",
        alert_plot,
        html_table(
            ["Week (Monday)", *rules, "Total"],
            [
                (week, *(load[rule][i] for rule in rules), sum(load[rule][i] for rule in rules))
                for i, week in enumerate(weeks)
            ],
        ),
        f'<p class="note">Cards already showing at the start (not counted as new): '
        f"{escape(', '.join(f'{r} {c:,}' for r, c in sorted(report.at_start.items())) or 'none')}.</p>",
        "<h2>Lead time</h2>",
        lead_plot,
        html_table(
            ["Event", "Patients", "Spinal card before", "Card only after", "No card", "Median lead (days)"],
            [
                (
                    row["event"],
                    row["patients"],
                    row["card_before_event"],
                    row["card_after_event"],
                    row["no_card"],
                    "n/a" if row["median_lead_days"] is None else str(row["median_lead_days"]),
                )
                for row in report.lead_summary()
            ],
        ),
        f'<p class="note">Patients with an event on or after the start: a cord compression or spinal metastasis '
        f"recorded (value sets cord-compression, secondary-bone-malignancy) or a whole-spine MRI done "
        f"(mri-spine-whole). Lead time: from the first spinal card ({', '.join(SPINAL_RULES)}) to the first "
        "such event.</p>",
        "<h2>NICE QS56</h2>",
        html_table(
            ["Statement", "Measure", "Patients", "MRI in time", "Proportion"],
            [(m.statement, m.description, m.denominator, m.numerator, share(m.proportion)) for m in report.measures],
        ),
        '<p class="note">A replay sees a red flag up to one step late: an MRI done from one step before the card '
        "counts.</p>",
        "<h2>Data</h2>",
        "<pre>" + escape("\n".join(problems)) + "</pre>",
    ]
    return html_page("MSCC screening: shadow mode report", sections)

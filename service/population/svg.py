"""Plots as inline SVG, for a report that is one self-contained HTML file (no plotting library).

Stacked columns with a legend beside the plot and each column's total above it: a label
never sits inside a bar, so a column of 1 card reads as well as one of 1,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "stacked_columns"]

#: Colour-blind-safe (Okabe-Ito), in series order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999")
_WIDTH, _HEIGHT = 760, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 150, 44, 64


def _ticks(top: int) -> list[int]:
    """Round tick values from 0 to at least ``top``, at most 6 of them."""
    step = 1
    while top / step > 5:
        for factor in (2, 5, 10):
            if top / (step * factor) <= 5:
                step *= factor
                break
        else:
            step *= 10
    return list(range(0, top + step, step))


def stacked_columns(
    plot_id: str, title: str, categories: Sequence[str], series: Mapping[str, Sequence[int]], y_label: str
) -> str:
    """An SVG of one column per category, stacked by series; ``series`` values align with ``categories``."""
    totals = [sum(values[index] for values in series.values()) for index in range(len(categories))]
    ticks = _ticks(max([*totals, 1]))
    top = ticks[-1]
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(len(categories), 1)
    bar = max(min(slot * 0.7, 60), 2)
    parts = [
        f'<svg id="{escape(plot_id)}" class="plot" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in ticks:
        y = _TOP + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    parts.append(
        f'<text transform="translate(14 {_TOP + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    # Thin out category labels so that they never overlap (about 50 px each).
    every = max(1, round(len(categories) * 50 / plot_w))
    for index, category in enumerate(categories):
        x = _LEFT + slot * index + (slot - bar) / 2
        base: float = _TOP + plot_h
        for number, values in enumerate(series.values()):
            height = plot_h * values[index] / top
            if height > 0:
                colour = PALETTE[number % len(PALETTE)]
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{base - height:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                    f'fill="{colour}"/>'
                )
                base -= height
        if totals[index]:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{base - 4:.1f}" text-anchor="middle">{totals[index]:,}</text>'
            )
        if index % every == 0:
            label_y = _TOP + plot_h + 14
            parts.append(
                f'<text transform="translate({x + bar / 2:.1f} {label_y}) rotate(30)">{escape(category)}</text>'
            )
    for number, name in enumerate(series):
        y = _TOP + 14 * number
        colour = PALETTE[number % len(PALETTE)]
        parts.append(f'<rect x="{_WIDTH - _RIGHT + 16}" y="{y}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{_WIDTH - _RIGHT + 32}" y="{y + 9}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)

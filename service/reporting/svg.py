"""Plots as inline SVG, for reports that are one self-contained HTML file (no plotting library).

Two kinds share one frame (title, y axis, category labels, legend): stacked columns, with
each column's total above it, and a line of rates (0-100 %), with each point's value above
it. A label never sits inside a bar, and the frame is laid out from the text it must hold,
so that no two labels overlap at any count:

* the legend sits beside the plot, as wide as its longest name, and the plot grows taller
  rather than let the legend run below it;
* a value goes above its column horizontally when it fits the column's slot, else turned
  upright (the top margin grows to hold it), else, with more columns than the plot can
  label, it is left to the table beside the plot (the plot says so);
* category labels are slanted and thinned out so that neighbours keep apart.

Text widths are estimated generously (0.62 em a character, wider than any digit or
lower-case letter of the usual sans-serif faces); a headless-Chromium test measures the
real boxes (tests/service/reporting).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "rate_line", "stacked_columns", "text_width"]

#: Colour-blind-safe (Okabe-Ito), in series order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999")
_FONT = 11
_TITLE_FONT = 13
_LINE = 14  # one legend row, one line of text
_PLOT_W, _MIN_PLOT_H = 560, 190
_TITLE_H = 30
# Slanted category labels: 30 degrees, neighbours at least this far apart along the axis.
_SLANT = math.radians(30)
_LABEL_SPACING = 32
_NO_ROOM = "values in the table"


def text_width(text: str, size: int = _FONT) -> float:
    """A generous estimate of the rendered width of ``text`` in a sans-serif face of ``size`` px."""
    return 0.62 * size * len(text)


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


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where everything goes, worked out from the text to be shown."""

    left: float
    top: float
    plot_h: float
    slot: float
    width: float
    height: float
    #: "horizontal", "upright" or "none": how values above columns or points are written
    values: str

    @property
    def base(self) -> float:
        return self.top + self.plot_h

    def x(self, index: int) -> float:
        """The centre of category ``index``."""
        return self.left + self.slot * (index + 0.5)


def _frame(
    title: str, categories: Sequence[str], tick_labels: Sequence[str], legend: Sequence[str], values: Sequence[str]
) -> _Frame:
    slot = _PLOT_W / max(len(categories), 1)
    widest_value = max((text_width(value) for value in values), default=0.0)
    if widest_value + 4 <= slot:
        mode, value_room = "horizontal", _LINE + 2.0
    elif slot >= _FONT + 4:
        mode, value_room = "upright", widest_value + 8
    else:
        mode, value_room = "none", _LINE + 2.0  # the "values in the table" note
    left = 28 + max((text_width(label) for label in tick_labels), default=0.0) + 8
    top = _TITLE_H + value_room
    plot_h = max(_MIN_PLOT_H, _LINE * len(legend) + 4)
    widest_category = max((text_width(category) for category in categories), default=0.0)
    bottom = 16 + widest_category * math.sin(_SLANT) + _FONT + 6
    legend_w = 36 + max((text_width(name) for name in legend), default=0.0)
    # The last category label slants to the right, under the legend's column but below the plot.
    overhang = widest_category * math.cos(_SLANT) - slot / 2
    right = max(legend_w, overhang) + 10
    width = max(left + _PLOT_W + right, left + text_width(title, _TITLE_FONT) + 10)
    return _Frame(left, top, plot_h, slot, math.ceil(width), math.ceil(top + plot_h + bottom), mode)


def _open(plot_id: str, title: str, frame: _Frame) -> list[str]:
    return [
        f'<svg id="{escape(plot_id)}" class="plot" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{frame.width}" height="{frame.height}" '
        f'viewBox="0 0 {frame.width} {frame.height}" font-family="sans-serif" font-size="{_FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{frame.left:.1f}" y="18" font-size="{_TITLE_FONT}" font-weight="bold">{escape(title)}</text>',
    ]


def _axes(
    frame: _Frame, ticks: Sequence[tuple[float, str]], y_label: str, categories: Sequence[str], empty: str | None
) -> list[str]:
    """Grid lines and tick labels (``ticks``: share of the height, label), the axis title, category labels."""
    parts = []
    for share, label in ticks:
        y = frame.base - frame.plot_h * share
        parts.append(
            f'<line x1="{frame.left:.1f}" x2="{frame.left + _PLOT_W:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="{frame.left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    parts.append(
        f'<text transform="translate(14 {frame.top + frame.plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    every = max(1, math.ceil(_LABEL_SPACING / frame.slot))
    degrees = round(math.degrees(_SLANT))
    for index, category in enumerate(categories):
        if index % every == 0:
            parts.append(
                f'<text class="category" transform="translate({frame.x(index) - 3:.1f} {frame.base + 14:.1f}) '
                f'rotate({degrees})">{escape(category)}</text>'
            )
    if empty is not None:
        parts.append(
            f'<text x="{frame.left + _PLOT_W / 2:.1f}" y="{frame.top + frame.plot_h / 2:.1f}" text-anchor="middle" '
            f'fill="#555">{escape(empty)}</text>'
        )
    elif frame.values == "none":
        parts.append(
            f'<text x="{frame.left + _PLOT_W:.1f}" y="{frame.top - 6:.1f}" text-anchor="end" fill="#555">'
            f"{_NO_ROOM}</text>"
        )
    return parts


def _value_label(frame: _Frame, x: float, y: float, text: str) -> str:
    """``text`` just above the point (x, y), as the frame decided; nothing when there is no room."""
    if frame.values == "horizontal":
        return f'<text class="value" x="{x:.1f}" y="{y - 4:.1f}" text-anchor="middle">{escape(text)}</text>'
    if frame.values == "upright":
        return f'<text class="value" transform="translate({x + 4:.1f} {y - 4:.1f}) rotate(-90)">{escape(text)}</text>'
    return ""


def _legend(frame: _Frame, names: Sequence[str]) -> list[str]:
    parts = []
    x = frame.left + _PLOT_W + 16
    for number, name in enumerate(names):
        y = frame.top + _LINE * number
        colour = PALETTE[number % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{x + 16:.1f}" y="{y + 9:.1f}">{escape(name)}</text>')
    return parts


def stacked_columns(
    plot_id: str,
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    y_label: str,
    *,
    empty: str = "nothing to show",
) -> str:
    """An SVG of one column per category, stacked by series; ``series`` values align with ``categories``.

    ``empty`` is written across the plot when every column is zero.
    """
    totals = [sum(values[index] for values in series.values()) for index in range(len(categories))]
    ticks = _ticks(max([*totals, 1]))
    top = ticks[-1]
    labels = [f"{total:,}" for total in totals if total]
    frame = _frame(title, categories, [f"{tick:,}" for tick in ticks], list(series), labels)
    bar = max(min(frame.slot * 0.7, 60), 2)
    parts = _open(plot_id, title, frame)
    parts += _axes(frame, [(tick / top, f"{tick:,}") for tick in ticks], y_label, categories, None if labels else empty)
    for index in range(len(categories)):
        x = frame.x(index) - bar / 2
        base: float = frame.base
        for number, values in enumerate(series.values()):
            height = frame.plot_h * values[index] / top
            if height > 0:
                colour = PALETTE[number % len(PALETTE)]
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{base - height:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                    f'fill="{colour}"/>'
                )
                base -= height
        if totals[index]:
            parts.append(_value_label(frame, frame.x(index), base, f"{totals[index]:,}"))
    parts += _legend(frame, list(series))
    parts.append("</svg>")
    return "".join(parts)


def rate_line(
    plot_id: str,
    title: str,
    categories: Sequence[str],
    rates: Sequence[float | None],
    y_label: str,
    name: str,
    *,
    empty: str = "nothing to show",
) -> str:
    """An SVG line of shares (0 to 1) per category, each point labelled in per cent; ``None`` is a gap."""
    labels = [f"{rate:.0%}" for rate in rates if rate is not None]
    ticks = [(share / 4, f"{share * 25}%") for share in range(5)]
    frame = _frame(title, categories, [label for _, label in ticks], [name], labels)
    parts = _open(plot_id, title, frame)
    parts += _axes(frame, ticks, y_label, categories, None if labels else empty)
    colour = PALETTE[0]
    points = [
        (frame.x(index), frame.base - frame.plot_h * rate) if rate is not None else None
        for index, rate in enumerate(rates)
    ]
    for start, end in itertools.pairwise(points):
        if start is not None and end is not None:
            parts.append(
                f'<line x1="{start[0]:.1f}" y1="{start[1]:.1f}" x2="{end[0]:.1f}" y2="{end[1]:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
    for point, rate in zip(points, rates, strict=True):
        if point is not None and rate is not None:
            parts.append(f'<circle class="point" cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="3.5" fill="{colour}"/>')
            parts.append(_value_label(frame, point[0], point[1] - 3, f"{rate:.0%}"))
    parts += _legend(frame, [name])
    parts.append("</svg>")
    return "".join(parts)

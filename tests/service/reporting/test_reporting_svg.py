"""The report plots are readable at every count: no two labels overlap, none is cut off.

Checked in Debian's headless chromium (through Playwright; never ``playwright install``)
with the real fonts: every text element's box, turned as it is drawn, against every
other's and against the plot's edges, for plots of 0, 1, 2 and many cards, weeks and series.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from service.reporting.svg import rate_line, stacked_columns

REASONS = [
    "Already imaged",
    "Patient declined",
    "Not clinically indicated",
    "End-of-life care",
    "Other",
    "no reason given",
    "unlisted reason (code local-reason-with-a-long-code)",
    "other reasons",
]


def _weeks(count: int) -> list[str]:
    return [(date(2026, 1, 5) + timedelta(weeks=number)).isoformat() for number in range(count)]


def _random_series(names: list[str], weeks: int, high: int, seed: int) -> dict[str, list[int]]:
    rng = random.Random(seed)
    return {name: [rng.choice((0, 1, rng.randint(0, high))) for _ in range(weeks)] for name in names}


def _plots() -> dict[str, str]:
    """Plots at the counts where labels used to collide, each under a name saying what it holds."""
    cases = {
        "no week": stacked_columns("a", "Cards shown per week, by rule", [], {}, "cards shown"),
        "0 cards": stacked_columns("b", "Cards shown per week, by rule", _weeks(2), {"R1": [0, 0]}, "cards shown"),
        "1 card": stacked_columns("c", "Cards shown per week, by rule", _weeks(1), {"R1": [1]}, "cards shown"),
        "2 cards, 2 rules, 1 week": stacked_columns(
            "d", "Cards shown per week, by rule", _weeks(1), {"R1": [1], "R2": [1]}, "cards shown"
        ),
        "1 and 1,000 cards": stacked_columns(
            "e", "Cards shown per week, by rule", _weeks(2), {"R1": [1, 1000], "R2": [0, 1]}, "cards shown"
        ),
        "9 weeks of big numbers": stacked_columns(
            "f", "Cards shown", _weeks(9), _random_series(["R1", "R2"], 9, 99_999, 1), "cards shown"
        ),
        "a year, 8 reasons": stacked_columns(
            "g", "Cards overridden per week, by reason", _weeks(53), _random_series(REASONS, 53, 40, 2), "overridden"
        ),
        "three years, 14 rules": stacked_columns(
            "h",
            "Cards shown per week, by rule",
            _weeks(160),
            _random_series([f"R{n}" for n in range(1, 15)], 160, 3_000, 3),
            "cards shown",
        ),
        "rate, no card": rate_line("i", "Share overridden", _weeks(3), [None, None, None], "overridden", "all rules"),
        "rate, 1 week": rate_line("j", "Share overridden", _weeks(1), [1.0], "overridden", "all rules"),
        "rate, 2 weeks": rate_line("k", "Share overridden", _weeks(2), [0.0, 0.5], "overridden", "all rules"),
        "rate, a year": rate_line(
            "l",
            "Share overridden",
            _weeks(53),
            [None if n % 7 == 3 else (n * 37 % 101) / 100 for n in range(53)],
            "overridden",
            "all rules",
        ),
        "rate, three years": rate_line(
            "m", "Share overridden", _weeks(160), [(n % 11) / 10 for n in range(160)], "overridden", "all rules"
        ),
    }
    return cases


#: For every plot: the boxes of its text elements as drawn (corners in the plot's own
#: coordinates, turned labels included), then every pair that intersects (separating-axis
#: test on the two rectangles) and every box reaching outside the plot.
_CHECK = """
() => {
  const problems = [];
  for (const svg of document.querySelectorAll('svg')) {
    const width = svg.viewBox.baseVal.width, height = svg.viewBox.baseVal.height;
    const root = svg.getScreenCTM().inverse();
    const boxes = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
      const b = t.getBBox(), m = root.multiply(t.getScreenCTM());
      const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
        .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
      return {text: t.textContent, corners};
    });
    const separated = (p, q) => {
      for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
        const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
        const nx = y1 - y2, ny = x2 - x1;
        const span = r => r.map(([x, y]) => x * nx + y * ny);
        const a = span(p), c = span(q);
        if (Math.max(...a) <= Math.min(...c) + 0.01 || Math.max(...c) <= Math.min(...a) + 0.01) return true;
      }
      return false;
    };
    for (let i = 0; i < boxes.length; i++) {
      for (const [x, y] of boxes[i].corners) {
        if (x < -0.5 || y < -0.5 || x > width + 0.5 || y > height + 0.5) {
          problems.push(`${svg.dataset.case}: "${boxes[i].text}" reaches outside the plot`); break;
        }
      }
      for (let j = i + 1; j < boxes.length; j++) {
        if (!separated(boxes[i].corners, boxes[j].corners))
          problems.push(`${svg.dataset.case}: "${boxes[i].text}" overlaps "${boxes[j].text}"`);
      }
    }
  }
  return problems;
}
"""


@pytest.fixture(scope="module")
def chromium_page() -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None and not os.environ.get("CI"):
        pytest.skip("Debian chromium is not installed (.ci/test installs it)")
    assert chromium is not None, "CI must have Debian chromium (.ci/test installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_no_label_overlaps_another_or_leaves_the_plot_at_any_count(chromium_page: object) -> None:
    from playwright.sync_api import Page

    assert isinstance(chromium_page, Page)
    plots = _plots()
    body = "".join(svg.replace("<svg ", f'<svg data-case="{name}" ', 1) for name, svg in plots.items())
    chromium_page.set_content(f"<!DOCTYPE html><html><body>{body}</body></html>")
    assert chromium_page.locator("svg").count() == len(plots)
    assert chromium_page.evaluate(_CHECK) == []


def test_a_plot_without_cards_says_so() -> None:
    assert "no card was shown" in stacked_columns("x", "t", ["2026-01-05"], {"R1": [0]}, "y", empty="no card was shown")
    assert "nothing to show" in rate_line("x", "t", ["2026-01-05"], [None], "y", "all")
    assert "nothing to show" not in stacked_columns("x", "t", ["2026-01-05"], {"R1": [1]}, "y")


def test_every_column_total_is_written_when_the_columns_leave_room() -> None:
    svg = stacked_columns("x", "t", _weeks(3), {"R1": [1, 0, 1_000], "R2": [1, 0, 234]}, "y")
    assert [">2<", ">1,234<"] == [label for label in (">2<", ">1,234<") if label in svg]
    assert 'class="value"' in svg and "values in the table" not in svg


def test_too_many_columns_to_label_leave_their_totals_to_the_table() -> None:
    svg = stacked_columns("x", "t", _weeks(160), {"R1": [1_000] * 160}, "y")
    assert 'class="value"' not in svg
    assert "values in the table" in svg

"""``mscc-cds report --html``: a store filled by the running service (hook calls, feedback POSTs), read back.

The service is the real app (its lifespan migrates a SQLite store); every card is one it
answered over HTTP, every outcome one a client posted to its feedback endpoint. The
audit records the wall-clock time of each call, so all the cards fall in this week.

* scenario 01 three times (R1), 11 twice (R2), 16 once (R2b): 6 cards;
* R1: overridden with a reason sent as its code alone ("already-imaged"), accepted, no answer;
* R2: overridden with a full coding ("Patient declined"), overridden without a reason;
* R2b: overridden with a code alone ("end-of-life-care").
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.cli import main
from service.reporting.svg import PALETTE
from service.settings import Settings
from tests.inprocess import serve_app
from tests.scenarios import SCENARIO_DIR, load_scenario
from tests.screenshots import bands, screenshot
from tests.servicepaths import service_path

KEY = "a3f1c9e7b5d2f4a6c8e0b1d3f5a7c9e1"
CALLS = [
    ("01-r1-neuro-urinary-retention", 3),
    ("11-r2-thoracic-back-pain", 2),
    ("16-r2b-backache-no-features", 1),
]


def _reason(card: dict[str, Any], code: str, *, with_display: bool) -> dict[str, Any]:
    coding = next(reason for reason in card["overrideReasons"] if reason["code"] == code)
    return {"reason": coding if with_display else {"system": coding["system"], "code": code}}


def _app(url: str, reference_time: datetime) -> Any:
    return create_app(
        Settings(mode="development", store={"url": url, "pseudonym_key": KEY}), clock=lambda: reference_time
    )


async def _fill(url: str) -> None:
    cards: dict[str, list[dict[str, Any]]] = {}
    for name, times in CALLS:
        scenario = load_scenario(SCENARIO_DIR / f"{name}.json")
        async with serve_app(_app(url, scenario.reference_time), "http://mscc.test") as client:
            for _ in range(times):
                request = {**scenario.request, "hookInstance": str(uuid.uuid4())}
                answer = await client.post(service_path(), json=request)
                assert answer.status_code == 200, answer.text
                for card in answer.json()["cards"]:
                    cards.setdefault(card["source"]["topic"]["code"], []).append(card)
    assert {rule: len(shown) for rule, shown in cards.items()} == {"R1": 3, "R2": 2, "R2b": 1}
    r1, r2, (r2b,) = cards["R1"], cards["R2"], cards["R2b"]
    when = "2026-06-01T09:10:00Z"
    items = [
        {
            "card": r1[0]["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": when,
            "overrideReason": _reason(r1[0], "already-imaged", with_display=False),
        },
        {
            "card": r1[1]["uuid"],
            "outcome": "accepted",
            "outcomeTimestamp": when,
            "acceptedSuggestions": [{"id": r1[1]["suggestions"][0]["uuid"]}],
        },
        {
            "card": r2[0]["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": when,
            "overrideReason": _reason(r2[0], "patient-declined", with_display=True),
        },
        {"card": r2[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": when},
        {
            "card": r2b["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": when,
            "overrideReason": _reason(r2b, "end-of-life-care", with_display=False),
        },
    ]
    # A later start of the service: every card's audit record has been written by then.
    async with serve_app(_app(url, datetime.now(UTC)), "http://mscc.test") as client:
        receipt = await client.post(f"{service_path()}/feedback", json={"feedback": items})
    assert receipt.json() == {"stored": 5, "duplicates": 0, "unknownCards": 0}, receipt.text


class _Tables(HTMLParser):
    """Every table of a page as rows of cell texts, the header row first."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table(html: str, *header: str) -> list[dict[str, str]]:
    """The rows (as header -> cell) of the one table whose header starts with ``header``."""
    parser = _Tables()
    parser.feed(html)
    (table,) = [table for table in parser.tables if tuple(table[0][: len(header)]) == header]
    return [dict(zip(table[0], row, strict=True)) for row in table[1:]]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-html")
    url = f"sqlite+aiosqlite:///{root / 'store.sqlite3'}"
    asyncio.run(_fill(url))
    today = datetime.now(UTC).date()
    page = root / "fatigue.html"
    since = (today - timedelta(days=13)).isoformat()
    assert main(["report", "--since", since, "--until", today.isoformat(), "--db", url, "--html", str(page)]) == 0
    return page


def test_the_page_counts_cards_per_rule_and_week(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    weeks = _table(html, "Week (Monday)", "R1")
    # two or three weeks in a 14-day period, cards in the current one only
    assert 2 <= len(weeks) <= 3
    busy = [week for week in weeks if week["Total"] != "0"]
    assert busy == [{"Week (Monday)": busy[0]["Week (Monday)"], "R1": "3", "R2": "2", "R2b": "1", "Total": "6"}]
    assert busy[0] == weeks[-1] or weeks[-1]["Total"] == "0"


def test_the_page_gives_the_override_rate_per_week_and_rule(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    (busy,) = [week for week in _table(html, "Week (Monday)", "Shown") if week["Shown"] != "0"]
    assert {key: value for key, value in busy.items() if key != "Week (Monday)"} == {
        "Shown": "6",
        "Accepted": "1",
        "Overridden": "4",
        "No feedback": "1",
        "Overridden %": "67%",
    }
    rules = {row["Rule"]: row for row in _table(html, "Rule", "Evaluated")}
    assert [(rules[r]["Shown"], rules[r]["Accepted"], rules[r]["Overridden"]) for r in ("R1", "R2", "R2b")] == [
        ("3", "1", "1"),
        ("2", "0", "2"),
        ("1", "0", "1"),
    ]
    assert (rules["R1"]["Overridden %"], rules["R2"]["Overridden %"], rules["Total"]["Overridden %"]) == (
        "33%",
        "100%",
        "67%",
    )


def test_override_reasons_are_shown_by_their_displays_never_their_codes(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    (busy,) = [week for week in _table(html, "Week (Monday)", "Already imaged") if week["Overridden"] != "0"]
    assert {key: value for key, value in busy.items() if key != "Week (Monday)"} == {
        "Already imaged": "1",
        "End-of-life care": "1",
        "Patient declined": "1",
        "no reason given": "1",
        "Overridden": "4",
    }
    per_rule = {(row["Rule"], row["Override reason"]): row["Cards"] for row in _table(html, "Rule", "Override reason")}
    assert per_rule == {
        ("R1", "Already imaged"): "1",
        ("R2", "Patient declined"): "1",
        ("R2", "no reason given"): "1",
        ("R2b", "End-of-life care"): "1",
    }
    assert "already-imaged" not in html and "end-of-life-care" not in html


def test_the_page_is_self_contained_with_three_plots(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    for plot in ("cards-per-week", "override-rate", "override-reasons"):
        assert f'<svg id="{plot}"' in html
    assert "<script" not in html and "src=" not in html and "href=" not in html


def test_the_page_renders_in_headless_chromium_with_its_plots(report: Path, tmp_path: Path) -> None:
    shot = screenshot(report, tmp_path, width=1000, height=2400)
    blue, orange, green = PALETTE[:3]
    # Blue is R1 in the first plot, the rate line in the second and the first reason in the
    # third: three bands (legend swatches with their plot), one plot below the other. Orange
    # (R2; the second reason) and green (R2b; the third reason) are in the first and the third.
    for colour, plots in ((blue, 3), (orange, 2), (green, 2)):
        assert len(bands(shot.rows_with(colour), gap=250)) == plots, colour

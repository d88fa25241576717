"""Shadow mode on a small export whose answers are worked out by hand from the decision table.

* A: thoracic back pain from 10 May → R2 new on 11 May; a whole-spine MRI on 13 May
  suppresses R2 (R9, 14 days), which comes back, new again, on 28 May.
* B: a neurological sign on 20 May → R1 new on 21 May; cord compression on 25 May.
* C: a neurological sign on 1 June → R1 new on 2 June; whole-spine MRI 3 h later.
* D: lung cancer only: never a card.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.cli import main
from service.cli.exitcodes import OK
from service.clinical.valuesets import ValueSetLibrary
from service.population.exportwriter import write_export
from service.reporting.svg import PALETTE
from tests.screenshots import bands, screenshot

SNOMED, LOINC = "http://snomed.info/sct", "http://loinc.org"


def _code(library: ValueSetLibrary, valueset: str, system: str = SNOMED) -> dict[str, Any]:
    code = sorted(code for member, code in library.codes_of(valueset) if member == system)[0]
    return {"coding": [{"system": system, "code": code}]}


def _resources() -> list[dict[str, Any]]:
    library = ValueSetLibrary.load()
    resources: list[dict[str, Any]] = []

    def condition(patient: str, number: int, valueset: str, onset: str) -> None:
        resources.append(
            {
                "resourceType": "Condition",
                "id": f"{patient}-c{number}",
                "clinicalStatus": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
                },
                "code": _code(library, valueset),
                "subject": {"reference": f"Patient/{patient}"},
                "onsetDateTime": onset,
            }
        )

    def mri(patient: str, performed: str) -> None:
        resources.append(
            {
                "resourceType": "Procedure",
                "id": f"{patient}-mri",
                "status": "completed",
                "code": _code(library, "mri-spine-whole", LOINC),
                "subject": {"reference": f"Patient/{patient}"},
                "performedDateTime": performed,
            }
        )

    for patient in ("a", "b", "c", "d"):
        resources.append({"resourceType": "Patient", "id": patient, "birthDate": "1950-03-03"})
        condition(patient, 1, "lung-cancer-primary", "2025-01-10T10:00:00Z")
    condition("a", 2, "spinal-pain-thoracic", "2026-05-10T09:00:00Z")
    mri("a", "2026-05-13T10:00:00Z")
    condition("b", 2, "mscc-neuro-signs", "2026-05-20T08:00:00Z")
    condition("b", 3, "cord-compression", "2026-05-25T12:00:00Z")
    condition("c", 2, "mscc-neuro-signs", "2026-06-01T08:00:00Z")
    mri("c", "2026-06-02T03:00:00Z")
    return resources


@pytest.fixture(scope="module")
def shadow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shadow")
    write_export(_resources(), root / "export", transaction_time=_end())
    code = main(
        ["population", str(root / "export"), "--from", "2026-05-01", "--to", "2026-06-10", "--out", str(root / "out")]
    )
    assert code == OK
    return root / "out"


def _end() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 6, 10, tzinfo=UTC)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_new_cards_are_counted_per_rule_and_week_once_each(shadow: Path) -> None:
    load = {(row["week"], row["rule"]): int(row["new_cards"]) for row in _csv(shadow / "alert_load.csv")}
    assert {key: count for key, count in load.items() if count} == {
        ("2026-05-11", "R2"): 1,
        ("2026-05-25", "R2"): 1,
        ("2026-05-18", "R1"): 1,
        ("2026-06-01", "R1"): 1,
    }
    weeks = sorted({week for week, _ in load})
    assert weeks[0] == "2026-04-27" and weeks[-1] == "2026-06-08"
    assert date.fromisoformat(weeks[1]) - date.fromisoformat(weeks[0]) == date(2026, 5, 4) - date(2026, 4, 27)


def test_lead_times_run_from_the_first_spinal_card_to_the_event(shadow: Path) -> None:
    rows = {(row["patient_id"], row["event"]): row for row in _csv(shadow / "lead_times.csv")}
    assert set(rows) == {("a", "whole-spine MRI"), ("b", "cord compression"), ("c", "whole-spine MRI")}
    assert rows[("a", "whole-spine MRI")]["first_card_rule"] == "R2"
    assert float(rows[("a", "whole-spine MRI")]["lead_days"]) == pytest.approx(2 + 10 / 24, abs=0.01)
    assert float(rows[("b", "cord compression")]["lead_days"]) == pytest.approx(4.5, abs=0.01)
    assert float(rows[("c", "whole-spine MRI")]["lead_days"]) == pytest.approx(3 / 24, abs=0.01)


def test_qs56_statements_2_and_3(shadow: Path) -> None:
    measures = {row["statement"]: row for row in _csv(shadow / "qs56.csv")}
    assert (measures["QS56 statement 3"]["numerator"], measures["QS56 statement 3"]["denominator"]) == ("1", "2")
    assert (measures["QS56 statement 2"]["numerator"], measures["QS56 statement 2"]["denominator"]) == ("1", "1")
    summary = orjson.loads((shadow / "shadow_summary.json").read_bytes())
    assert summary["time_points"] == 41
    assert summary["patients_screened"] == 4


def test_the_report_is_one_self_contained_file_with_both_plots(shadow: Path) -> None:
    html = (shadow / "shadow_report.html").read_text(encoding="utf-8")
    assert '<svg id="alert-load"' in html and '<svg id="lead-time"' in html
    assert "<script" not in html and "src=" not in html and "href=" not in html
    assert "QS56 statement 3" in html


def test_the_report_renders_in_headless_chromium_with_both_plots(shadow: Path, tmp_path: Path) -> None:
    shot = screenshot(shadow / "shadow_report.html", tmp_path, width=1000, height=1700)
    # Each plot draws its first two series (R1 and R2; cord compression and MRI) in the first
    # two colours: both colours show in separate bands, far apart, one plot above the other.
    for colour in PALETTE[:2]:
        runs = bands(shot.rows_with(colour), gap=60)
        assert len(runs) >= 2, (colour, runs)
        assert runs[-1][0] - runs[0][1] > 300, (colour, runs)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"resourceType": "Patient", "birthDate": "1950-01-01"}, None),
        (
            {"resourceType": "Condition", "recordedDate": "2026-05-02T10:00:00Z", "onsetDateTime": "2026-04-01"},
            "2026-05-02T10:00:00+00:00",
        ),
        (
            {"resourceType": "Condition", "onsetPeriod": {"start": "2026-04-01T08:00:00+01:00"}},
            "2026-04-01T08:00:00+01:00",
        ),
        ({"resourceType": "Observation", "effectiveDateTime": "2026-04-03"}, "2026-04-03T00:00:00+00:00"),
        ({"resourceType": "ServiceRequest", "authoredOn": "2026-04-04T09:30:00Z"}, "2026-04-04T09:30:00+00:00"),
        ({"resourceType": "Procedure", "performedDateTime": "not a date"}, None),
        ({"resourceType": "Condition"}, None),
    ],
)
def test_a_replay_sees_a_resource_from_when_it_was_recorded(resource: dict[str, Any], expected: str | None) -> None:
    from datetime import UTC, datetime

    from service.population.shadow import recorded_at

    moment = recorded_at(resource, UTC)
    assert moment == (datetime.fromisoformat(expected) if expected else None)

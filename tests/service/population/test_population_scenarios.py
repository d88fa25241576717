"""``mscc-cds population`` over an export made of every golden scenario gives the hook's cards.

Each scenario's resources become lines of a Bulk FHIR export (one folder per reference time);
the command screens every patient at that time. Its worklist must hold, for every scenario,
exactly the cards the hook answers to the scenario's request (rule, indicator and summary),
which test_scenarios checks against the expectation written in the file.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from service.app import create_app
from service.cli import main
from service.cli.exitcodes import OK
from service.population.exportwriter import write_export
from service.prefetch import PREFETCH_KEYS
from service.scenarios import Scenario
from service.settings import DEFAULT_PROFILES_DIR, Settings
from service.store.settings import StoreSettings
from tests.inprocess import serve_app
from tests.scenarios import card_multiset, expected_multiset, load_scenarios
from tests.servicepaths import service_path

#: A request the hook answers 412 (a required key not FHIR, or only another patient's data)
#: has no export form: NDJSON lines are resources, each filed under its own patient.
#: A ``urn:uuid:`` reference is resolved through the fullUrls of the request's Bundles; an
#: export has no Bundles (each line is a resource as the server holds it), so those scenarios
#: have no export form either.
SCENARIOS = [
    scenario
    for scenario in load_scenarios()
    if scenario.expected_status == 200 and b'"urn:uuid:' not in orjson.dumps(scenario.prefetch)
]


SCENARIO_SERVER = "https://ehr.example.org/fhir"


def _hook_data_is_the_export(scenario: Scenario) -> bool:
    """Whether the hook saw exactly what the export holds: no draft orders, every key prefetched."""
    return "draftOrders" not in scenario.context and all(key in scenario.prefetch for key in PREFETCH_KEYS)


async def _hook_cards(scenarios: list[Scenario], at: datetime, store: StoreSettings) -> dict[str, list[dict[str, Any]]]:
    app = create_app(Settings(profiles_dir=DEFAULT_PROFILES_DIR, store=store), clock=lambda: at)
    answers: dict[str, list[dict[str, Any]]] = {}
    async with serve_app(app) as client:
        for scenario in scenarios:
            response = await client.post(service_path(scenario.request["hook"]), json=scenario.request)
            assert response.status_code == 200, (scenario.name, response.text)
            answers[scenario.patient_id] = response.json()["cards"]
    return answers


def _worklist(out: Path) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (out / "worklist.ndjson").read_bytes().splitlines():
        row = orjson.loads(line)
        rows[row["patient_id"]].append(row)
    return rows


@pytest.mark.usefixtures("clean_mscc_environment")  # the expectations assume the default clinical policy
def test_population_gives_every_scenario_the_hook_cards(tmp_path: Path, store_settings: StoreSettings) -> None:
    by_time: dict[datetime, list[Scenario]] = defaultdict(list)
    for scenario in SCENARIOS:
        by_time[scenario.reference_time].append(scenario)
    checked = 0
    mri_states: set[str] = set()
    for index, (at, scenarios) in enumerate(sorted(by_time.items())):
        export, out = tmp_path / f"export-{index}", tmp_path / f"out-{index}"
        # An entry with no resourceType (the structure scenarios) has no NDJSON file to go in; the
        # population's own handling of such lines is tested in test_export.py.
        resources = [
            resource
            for scenario in scenarios
            for resource in scenario.resources()
            if isinstance(resource.get("resourceType"), str)
        ]
        # The scenarios' EHR is the export's server: their absolute references name it.
        (server,) = {scenario.request.get("fhirServer", SCENARIO_SERVER) for scenario in scenarios}
        write_export(
            resources, export, transaction_time=at, compress=index % 2 == 1, request=f"{server}/Patient/$export"
        )
        assert main(["population", str(export), "--at", at.isoformat(), "--out", str(out)]) == OK
        worklist = _worklist(out)
        hook = anyio.run(_hook_cards, scenarios, at, store_settings)
        summary = orjson.loads((out / "summary.json").read_bytes())
        # Resources of other patients (the integrity scenarios) are those patients' own records here.
        patients = {resource["id"] for resource in resources if resource.get("resourceType") == "Patient"}
        assert summary["patients_screened"] == len(patients) >= len(scenarios)
        for scenario in scenarios:
            rows = worklist.get(scenario.patient_id, [])
            got = Counter((row["rule"], row["indicator"]) for row in rows)
            assert got == expected_multiset(scenario) == card_multiset(hook[scenario.patient_id]), scenario.name
            if _hook_data_is_the_export(scenario):
                # the same data at the same time: the same words, not only the same rules
                assert sorted(row["summary"] for row in rows) == sorted(
                    card["summary"] for card in hook[scenario.patient_id]
                ), scenario.name
            own = {f"{resource.get('resourceType')}/{resource.get('id')}" for resource in scenario.resources()}
            for row in rows:
                assert row["evidence"], scenario.name
                assert set(row["evidence"]) <= own, scenario.name
                # the column states what the card says (R9 rewords or downgrades R1 for a whole-spine MRI)
                cites_mri = "whole-spine MRI requested" in row["summary"] or "whole-spine MRI done" in row["summary"]
                assert (row["whole_spine_mri"] != "none") == cites_mri, scenario.name
                mri_states.add(row["whole_spine_mri"])
            checked += 1
    assert checked == len(SCENARIOS) > 80
    assert mri_states == {"none", "ordered", "done"}

"""``mscc-cds seed``: scenarios become FHIR transactions, dates shifted so referenceTime is now."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.cli import main
from service.cli.exitcodes import FAILURE
from service.cli.seed import SeedError, seed_scenarios
from service.scenarios import Scenario, ScenarioError, load_scenarios, shift_dates, transaction_bundle
from service.settings import DEFAULT_PROFILES_DIR
from tests.bundles import searchset

REFERENCE = datetime.fromisoformat("2026-06-01T10:00:00+01:00")
NOW = datetime.fromisoformat("2026-11-24T15:30:00+00:00")
SHIFT = NOW - REFERENCE


def scenario_file(folder: Path, name: str, *, sandbox: bool = True, **prefetch: Any) -> Path:
    request = {
        "hook": "patient-view",
        "hookInstance": "5b0c5f64-7f8c-4d25-8a71-7d0d6a3f4f10",
        "context": {"userId": "Practitioner/u", "patientId": f"{name}-patient"},
        "prefetch": prefetch,
        "extension": {
            "org.mscc-cds.scenario": {
                "title": name,
                "referenceTime": REFERENCE.isoformat(),
                "expectedCards": [{"ruleId": "R1", "indicator": "critical"}],
                "sandbox": sandbox,
            }
        },
    }
    path = folder / f"{name}.json"
    path.write_bytes(orjson.dumps(request))
    return path


PATIENT = {
    "resourceType": "Patient",
    "id": "t1-patient",
    "birthDate": "1960-06-01",
    "meta": {"versionId": "3", "lastUpdated": "2026-05-01T00:00:00Z"},
}
CONDITION = {
    "resourceType": "Condition",
    "id": "t1-cond",
    "subject": {"reference": "Patient/t1-patient"},
    "onsetDateTime": "2026-05-31T22:15:00+01:00",
    "recordedDate": "2026-05-30",
    "meta": {
        "versionId": "1",
        "profile": ["http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition"],
    },
}


class TestShiftDates:
    def shift(self, value: Any, key: str = "valueDateTime") -> Any:
        return shift_dates({key: value}, SHIFT, REFERENCE)[key]

    def test_datetimes_move_by_exactly_the_shift_and_keep_their_offset(self) -> None:
        moved = self.shift("2026-05-31T22:15:00+01:00")
        assert moved.endswith("+01:00")
        assert datetime.fromisoformat(moved) - datetime.fromisoformat("2026-05-31T22:15:00+01:00") == SHIFT

    def test_reference_time_becomes_now(self) -> None:
        assert datetime.fromisoformat(self.shift(REFERENCE.isoformat())) == NOW

    def test_utc_z_and_fractions_are_kept(self) -> None:
        # 09:00Z is the reference time itself
        assert self.shift("2026-06-01T09:00:00Z") == "2026-11-24T15:30:00Z"
        assert self.shift("2026-06-01T09:00:00.250Z", "issued") == "2026-11-24T15:30:00.250Z"

    def test_dates_move_as_if_at_the_reference_time_of_day(self) -> None:
        # 10:00 +01:00 on the reference date is 15:30 UTC today: the reference date becomes today
        assert self.shift("2026-06-01", "recordedDate") == "2026-11-24"
        assert self.shift("2026-05-25", "recordedDate") == "2026-11-17"

    def test_partial_dates_keep_their_precision_under_date_elements(self) -> None:
        assert self.shift("1960-06", "birthDate") == "1960-11"
        assert self.shift("1960", "birthDate") == "1960"
        assert self.shift("2025-12", "start") == "2026-05"

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("id", "2026-06-01"),
            ("code", "2026-05"),
            ("value", "2026-06-01"),
            ("postalCode", "2000"),
            ("text", "2026"),
            ("valueString", "not a date"),
            ("recordedDate", "2026-02-30"),
        ],
    )
    def test_identifiers_codes_and_non_dates_stay(self, key: str, value: str) -> None:
        assert self.shift(value, key) == value

    def test_nested_structures(self) -> None:
        resource = {"effectivePeriod": {"start": "2026-05-01T08:00:00+01:00"}, "note": [{"time": "2026-05-01"}]}
        moved = shift_dates(resource, timedelta(days=1), REFERENCE)
        assert moved == {"effectivePeriod": {"start": "2026-05-02T08:00:00+01:00"}, "note": [{"time": "2026-05-02"}]}


class TestTransaction:
    def scenario(self, tmp_path: Path) -> Scenario:
        outcome = {"resourceType": "OperationOutcome", "issue": []}
        scenario_file(tmp_path, "t1", patient=PATIENT, conditions=searchset(CONDITION, CONDITION), labs=outcome)
        (scenario,) = load_scenarios(tmp_path)
        return scenario

    def test_puts_every_resource_once_with_its_id_and_meaningful_meta(self, tmp_path: Path) -> None:
        bundle = transaction_bundle(self.scenario(tmp_path))
        assert bundle["type"] == "transaction"
        assert [entry["request"] for entry in bundle["entry"]] == [
            {"method": "PUT", "url": "Patient/t1-patient"},
            {"method": "PUT", "url": "Condition/t1-cond"},
        ]
        assert "meta" not in bundle["entry"][0]["resource"]  # versionId and lastUpdated are the server's
        assert bundle["entry"][1]["resource"] == CONDITION | {"meta": {"profile": CONDITION["meta"]["profile"]}}

    def test_shifted_to_now(self, tmp_path: Path) -> None:
        bundle = transaction_bundle(self.scenario(tmp_path), now=NOW)
        condition = bundle["entry"][1]["resource"]
        assert (
            datetime.fromisoformat(condition["onsetDateTime"])
            == datetime.fromisoformat(CONDITION["onsetDateTime"]) + SHIFT
        )
        assert condition["recordedDate"] == "2026-11-22"
        assert condition["id"] == "t1-cond"


class TestLoader:
    def test_sandbox_only(self, tmp_path: Path) -> None:
        scenario_file(tmp_path, "a", patient=PATIENT)
        scenario_file(tmp_path, "b", sandbox=False, patient=PATIENT)
        assert [s.name for s in load_scenarios(tmp_path)] == ["a", "b"]
        assert [s.name for s in load_scenarios(tmp_path, sandbox_only=True)] == ["a"]

    @pytest.mark.parametrize(
        "content",
        [
            b"{not json",
            b"[]",
            b'{"context": {"patientId": "p"}}',
            b'{"context": {"patientId": "p"}, "extension": {"org.mscc-cds.scenario": '
            b'{"referenceTime": "2026-06-01T10:00:00"}}}',
            b'{"context": {"patientId": "p"}, "extension": ["not", "an", "object"]}',
        ],
    )
    def test_broken_files_are_named(self, tmp_path: Path, content: bytes) -> None:
        (tmp_path / "broken.json").write_bytes(content)
        with pytest.raises(ScenarioError, match=r"broken\.json"):
            load_scenarios(tmp_path)

    def test_the_project_examples_load(self) -> None:
        scenarios = load_scenarios(DEFAULT_PROFILES_DIR / "examples")
        assert scenarios
        assert all(scenario.resources() for scenario in scenarios if scenario.sandbox)
        ids = [(r["resourceType"], r["id"]) for s in scenarios if s.sandbox for r in s.resources()]
        assert len(ids) == len(set(ids)), "resource ids must be unique across scenarios to share one sandbox"


class TestSeedScenarios:
    def test_one_transaction_per_scenario(self, tmp_path: Path) -> None:
        scenario_file(tmp_path, "a", patient=PATIENT)
        scenario_file(tmp_path, "b", patient=PATIENT | {"id": "t2-patient"})
        posted: list[httpx.Request] = []

        def server(request: httpx.Request) -> httpx.Response:
            posted.append(request)
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response"})

        with httpx.Client(transport=httpx.MockTransport(server)) as http:
            loaded = seed_scenarios(http, "http://fhir.test/fhir", load_scenarios(tmp_path), now=None)
        assert [(scenario.name, count) for scenario, count in loaded] == [("a", 1), ("b", 1)]
        assert [str(request.url) for request in posted] == ["http://fhir.test/fhir"] * 2
        assert posted[0].headers["Content-Type"] == "application/fhir+json"
        assert orjson.loads(posted[1].content)["entry"][0]["request"]["url"] == "Patient/t2-patient"

    def test_refusal_names_the_scenario_and_the_servers_reason(self, tmp_path: Path) -> None:
        scenario_file(tmp_path, "a", patient=PATIENT)
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Patient.gender: bad code"}],
        }
        with (
            httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(400, json=outcome))) as http,
            pytest.raises(SeedError, match=r"refused scenario a \(HTTP 400\): Patient.gender: bad code"),
        ):
            seed_scenarios(http, "http://fhir.test/fhir", load_scenarios(tmp_path), now=None)


def test_cli_failures_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--fhir-server", "ftp://x/fhir", "--examples", str(tmp_path)]) == FAILURE
    assert "error: --fhir-server" in capsys.readouterr().err
    assert main(["seed", "--fhir-server", "http://127.0.0.1:9/fhir", "--examples", str(tmp_path)]) == FAILURE
    assert "no sandbox scenario" in capsys.readouterr().err
    scenario_file(tmp_path, "a", patient=PATIENT)
    port_without_server = "http://127.0.0.1:9/fhir"  # discard port: nothing answers
    assert main(["seed", "--fhir-server", port_without_server, "--examples", str(tmp_path)]) == FAILURE
    assert "cannot reach the FHIR server" in capsys.readouterr().err


def test_seed_reports_progress_and_records_its_time_for_screen_and_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import http.server
    import threading

    from service.cli.screen import evaluation_time
    from service.cli.seeded import seeded_time

    class Accepting(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"resourceType": "Bundle", "type": "transaction-response"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    scenario_file(tmp_path, "t1", patient=PATIENT)
    scenario_file(tmp_path, "t2", patient=PATIENT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Accepting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    try:
        before = datetime.now().astimezone()
        assert main(["seed", "--fhir-server", base, "--examples", str(tmp_path)]) == 0
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    # Not a terminal here: one plain line per scenario, no carriage returns.
    assert "[1/2] t1" in err and "[2/2] t2" in err and "\r" not in err
    seeded = seeded_time(base)
    assert seeded is not None and seeded >= before
    assert evaluation_time(None, base, development=True) == seeded
    assert evaluation_time(None, base, development=False) != seeded
    assert evaluation_time("now", base, development=True) != seeded
    assert evaluation_time("2026-06-01T10:00:00+01:00", base, development=True) == REFERENCE

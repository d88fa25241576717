"""The service's own FHIR queries against a real FHIR server (SEKMET) give the prefetch answer.

Every sandbox scenario is loaded into one SEKMET instance (conftest). For each, the hook
is called twice with the clock pinned to the scenario's referenceTime: once with the
scenario's full prefetch, once with no prefetch at all and a bearer token for the
sandbox. The cards (rule id and indicator, as a multiset) must be the same.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from cds_hooks.contexts import parse_context
from cds_hooks.models import CDSRequest
from service.cli.fhir_access import fhir_authorization
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.bundle import next_link
from service.fhir.client import FhirClient, build_http_client
from service.fhir.gather import FhirFetchError, PatientDataGatherer
from service.fhir.record import PatientRecord
from service.fhir.settings import FhirSettings
from service.prefetch import PREFETCH_KEYS, RECORD_PARTS, REQUIRED_KEYS, build_prefetch_templates
from service.settings import DEFAULT_PROFILES_DIR
from tests.bundles import searchset
from tests.inprocess import SettableClock
from tests.outcomes import assert_operation_outcome
from tests.scenarios import card_multiset
from tests.servicepaths import service_path

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SERVICE_URL = service_path()
EMPTY = searchset()
BUDGET_S = 5.0
VALUESETS = ValueSetLibrary.load(DEFAULT_PROFILES_DIR / "valuesets")
TEMPLATES = build_prefetch_templates(VALUESETS.codes_of)


def cards_of(response: httpx.Response) -> Counter[tuple[str, str]]:
    return card_multiset(response.json()["cards"])


def with_prefetch(scenario: Any) -> dict[str, Any]:
    """The scenario as written, without a FHIR server to fall back on.

    A key the scenario leaves out on purpose becomes what the sandbox holds for it: an
    empty searchset (the sandbox has no data the scenario did not send).
    """
    request = copy.deepcopy(scenario.request)
    request.pop("fhirServer", None)
    request.pop("fhirAuthorization", None)
    prefetch = request.setdefault("prefetch", {})
    for key in PREFETCH_KEYS:
        value = prefetch.get(key, EMPTY)
        prefetch[key] = EMPTY if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome" else value
    return request


def without_prefetch(scenario: Any, sandbox: Any, token: str | None = None) -> dict[str, Any]:
    request = copy.deepcopy(scenario.request)
    request.pop("prefetch", None)
    request["fhirServer"] = sandbox.base_url
    request["fhirAuthorization"] = fhir_authorization(token or sandbox.token)
    return request


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def sandbox_app(
    sandbox: Any, make_settings: Callable[..., Any], running_app: Callable[..., Any], clock: SettableClock
) -> Callable[..., Any]:
    """``async with sandbox_app(**fhir_settings) as client``: the service allowed to call the sandbox."""

    def open_app(**fhir: Any) -> Any:
        fhir.setdefault("allowed_servers", [sandbox.base_url])
        return running_app(make_settings(**fhir), clock=clock)

    return open_app


async def test_every_sandbox_scenario_gives_the_same_cards_from_the_fhir_server(
    sandbox: Any, sandbox_app: Callable[..., Any], clock: SettableClock
) -> None:
    assert len(sandbox.scenarios) >= 10, "the example scenarios should be loaded into the sandbox"
    differences = {}
    fired: Counter[tuple[str, str]] = Counter()
    async with sandbox_app() as client:
        for scenario in sandbox.scenarios:
            clock.now = scenario.reference_time
            reference = await client.post(service_path(scenario.request["hook"]), json=with_prefetch(scenario))
            fallback = await client.post(
                service_path(scenario.request["hook"]), json=without_prefetch(scenario, sandbox)
            )
            assert reference.status_code == scenario.expected_status, (scenario.name, reference.text)
            if scenario.expected_status != 200:
                # The prefetch cannot be screened as written (e.g. it holds only another patient's
                # conditions); from the server, the service reads this patient's own data instead.
                assert fallback.status_code in (200, 412), (scenario.name, fallback.text)
                continue
            assert fallback.status_code == 200, (scenario.name, fallback.text)
            fired += cards_of(fallback)
            if cards_of(reference) != cards_of(fallback):
                differences[scenario.name] = (cards_of(reference), cards_of(fallback))
    assert differences == {}
    # the comparison must not be one of empty answers only: every rule with a sandbox
    # scenario that expects it fired at least once from the FHIR server
    expected_rules = {card.rule_id for scenario in sandbox.scenarios for card in scenario.expected_cards}
    assert {rule_id for rule_id, _ in fired} == expected_rules


PAGING_PATIENT = "int-paging-patient"


@pytest.fixture(scope="module")
def many_labs(sandbox: Any) -> int:
    """A patient with more calcium results than one page of the labs template (_count=100) holds."""
    count = 130
    system, code = sorted(VALUESETS.get("calcium-total-molar").codes)[0]
    start = datetime.fromisoformat("2026-01-01T08:00:00+01:00")
    observations = [
        {
            "resourceType": "Observation",
            "id": f"int-paging-obs-{index}",
            "status": "final",
            "subject": {"reference": f"Patient/{PAGING_PATIENT}"},
            "code": {"coding": [{"system": system, "code": code}]},
            "effectiveDateTime": (start + timedelta(hours=index)).isoformat(),
            "valueQuantity": {"value": 2.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        }
        for index in range(count)
    ]
    sandbox.transaction([{"resourceType": "Patient", "id": PAGING_PATIENT, "birthDate": "1950-01-01"}, *observations])
    return count


class TestPaging:
    patient_id = PAGING_PATIENT

    @staticmethod
    async def gather(sandbox: Any, prefetch: dict[str, Any] | None, patient_id: str, **fhir: Any) -> PatientRecord:
        settings = FhirSettings(
            allowed_servers=[sandbox.base_url], budget_s=BUDGET_S, request_timeout_s=BUDGET_S, **fhir
        )
        request = CDSRequest.model_validate(
            {
                "hook": "patient-view",
                "hookInstance": "0c7f6f0e-9d1e-4d59-9a0c-3c2f5a8f2b11",
                "fhirServer": sandbox.base_url,
                "fhirAuthorization": fhir_authorization(sandbox.token),
                "context": {"userId": "Practitioner/u", "patientId": patient_id},
                **({"prefetch": prefetch} if prefetch is not None else {}),
            }
        )
        async with build_http_client(settings) as http:
            client = FhirClient(http, settings, mode="development")
            gatherer = PatientDataGatherer(
                TEMPLATES, REQUIRED_KEYS, client, parts=RECORD_PARTS, max_entries=1000, budget_s=BUDGET_S
            )
            return await gatherer.gather(request, parse_context(request.hook, request.context))

    async def test_client_follows_next_links_across_pages(self, sandbox: Any, many_labs: int) -> None:
        settings = FhirSettings(
            allowed_servers=[sandbox.base_url], budget_s=BUDGET_S, request_timeout_s=BUDGET_S, max_pages=30
        )
        async with build_http_client(settings) as http:
            client = FhirClient(http, settings, mode="development")
            query = f"Observation?patient={self.patient_id}&_count=7"
            resources = await client.fetch(sandbox.base_url, query, sandbox.token)
        assert len({resource["id"] for resource in resources}) == len(resources) == many_labs

    async def test_page_cap_keeps_what_was_read_and_says_so(self, sandbox: Any, many_labs: int) -> None:
        settings = FhirSettings(
            allowed_servers=[sandbox.base_url], budget_s=BUDGET_S, request_timeout_s=BUDGET_S, max_pages=3
        )
        async with build_http_client(settings) as http:
            client = FhirClient(http, settings, mode="development")
            with pytest.raises(FhirFetchError, match="more than 3 pages") as caught:
                await client.fetch(sandbox.base_url, f"Observation?patient={self.patient_id}&_count=7", sandbox.token)
        assert len(caught.value.partial or ()) == 21

    async def test_the_hook_templates_read_every_page(self, sandbox: Any, many_labs: int) -> None:
        record = await self.gather(sandbox, None, self.patient_id)
        assert record.gaps == []
        assert record.fetched["labs"] == many_labs

    async def test_a_paged_prefetch_bundle_is_completed_from_the_server(self, sandbox: Any, many_labs: int) -> None:
        with sandbox.client() as http:
            query = {"patient": self.patient_id, "_count": "50"}
            first_page = http.get(f"{sandbox.base_url}/Observation", params=query).json()
        assert len(first_page["entry"]) == 50
        prefetch = dict.fromkeys(PREFETCH_KEYS, EMPTY) | {
            "patient": {"resourceType": "Patient", "id": self.patient_id},
            "labs": first_page,
        }
        record = await self.gather(sandbox, prefetch, self.patient_id)
        assert record.gaps == []
        assert record.fetched == {"labs": many_labs - 50}
        assert len({resource["id"] for resource in record.resources["labs"]}) == many_labs


class TestFailures:
    async def test_wrong_token_is_412_when_required_data_is_missing(
        self, sandbox: Any, sandbox_app: Callable[..., Any]
    ) -> None:
        scenario = sandbox.scenarios[0]
        async with sandbox_app() as client:
            response = await client.post(SERVICE_URL, json=without_prefetch(scenario, sandbox, token="wrong-token"))
        diagnostics = assert_operation_outcome(response, 412, "incomplete")
        assert "prefetch key 'conditions': FHIR server refused the access token (401)" in diagnostics
        assert "wrong-token" not in response.text

    async def test_wrong_token_with_required_data_prefetched_evaluates_with_gaps(self, sandbox: Any) -> None:
        scenario = sandbox.scenarios[0]
        prefetch = {key: scenario.request["prefetch"][key] for key in ("patient", "conditions")}
        settings = FhirSettings(allowed_servers=[sandbox.base_url], budget_s=BUDGET_S, request_timeout_s=BUDGET_S)
        request = CDSRequest.model_validate(
            without_prefetch(scenario, sandbox, token="wrong-token") | {"prefetch": prefetch}
        )
        async with build_http_client(settings) as http:
            client = FhirClient(http, settings, mode="development")
            gatherer = PatientDataGatherer(
                TEMPLATES, REQUIRED_KEYS, client, parts=RECORD_PARTS, max_entries=1000, budget_s=BUDGET_S
            )
            record = await gatherer.gather(request, parse_context(request.hook, request.context))
        assert {gap.key for gap in record.gaps} == set(PREFETCH_KEYS) - REQUIRED_KEYS
        assert {gap.reason for gap in record.gaps} == {"FHIR server refused the access token (401)"}

    async def test_server_not_on_the_allowlist_is_refused(self, sandbox: Any, sandbox_app: Callable[..., Any]) -> None:
        scenario = sandbox.scenarios[0]
        async with sandbox_app(allowed_servers=["https://ehr.example.org/fhir"]) as client:
            response = await client.post(
                service_path(scenario.request["hook"]), json=without_prefetch(scenario, sandbox)
            )
        assert response.status_code == 412
        assert "fhirServer not on the allowlist" in response.text

    async def test_stopped_server_is_412_naming_the_refused_connection(
        self, sandbox: Any, sandbox_app: Callable[..., Any], free_port: Callable[[], int]
    ) -> None:
        scenario = sandbox.scenarios[0]
        stopped = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens there
        request = without_prefetch(scenario, sandbox) | {"fhirServer": stopped}
        # A budget wide enough that the refused connection, not the budget, ends the call even on
        # a loaded machine: this test is about the answer, the budget's own tests about time.
        async with sandbox_app(allowed_servers=[stopped], budget_s=5.0, request_timeout_s=4.0) as client:
            response = await client.post(SERVICE_URL, json=request)
        assert response.status_code == 412
        assert "FHIR server unreachable (ConnectError)" in response.text


async def test_token_never_reaches_a_log_record_on_the_real_network_path(
    sandbox: Any, make_settings: Callable[..., Any], running_app: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """httpx and httpcore log at DEBUG on a real connection; none of it may carry the token."""
    caplog.set_level(logging.DEBUG)
    scenario = sandbox.scenarios[0]
    settings = make_settings(log_level="DEBUG", allowed_servers=[sandbox.base_url])
    async with running_app(settings, clock=lambda: scenario.reference_time) as client:
        # the service quiets these two (service.logs); open them up again for the proof
        for name in ("httpx", "httpcore"):
            caplog.set_level(logging.DEBUG, logger=name)
        ok = await client.post(service_path(scenario.request["hook"]), json=without_prefetch(scenario, sandbox))
        refused = await client.post(SERVICE_URL, json=without_prefetch(scenario, sandbox, token="wrong-token-2f9d"))
    assert (ok.status_code, refused.status_code) == (200, 412)
    assert {record.name for record in caplog.records} & {"httpcore.http11", "httpcore.connection"}
    for record in caplog.records:
        rendered = f"{record.getMessage()} {record.__dict__!r} {record.exc_text or ''}"
        assert sandbox.token not in rendered, record.name
        assert "wrong-token-2f9d" not in rendered, record.name


LONG_PATIENT = "int-long-record-patient"
LONG_AT = datetime.fromisoformat("2026-06-01T10:00:00+01:00")


@pytest.fixture(scope="module")
def long_record(sandbox: Any) -> int:
    """A patient with 320 Conditions: years of old problems, then a lung cancer and, yesterday, urinary retention."""
    subject = {"reference": f"Patient/{LONG_PATIENT}"}
    old = [
        {
            "resourceType": "Condition",
            "id": f"int-long-old-{index:03d}",
            "subject": subject,
            "code": {"text": f"Old problem {index}"},
            "recordedDate": (LONG_AT - timedelta(days=400 + index)).isoformat(),
        }
        for index in range(318)
    ]
    cancer, retention = (
        {
            "resourceType": "Condition",
            "id": f"int-long-{name}",
            "subject": subject,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
            "onsetDateTime": (LONG_AT - timedelta(days=days)).isoformat(),
        }
        for name, code, days in (("cancer", "254637007", 200), ("retention", "267064002", 1))
    )
    sandbox.transaction(
        [{"resourceType": "Patient", "id": LONG_PATIENT, "birthDate": "1950-01-01"}, *old, cancer, retention]
    )
    return len(old) + 2


def long_request(sandbox: Any, **extra: Any) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "5b3c8f0e-2d4a-4c61-9b7e-1f0a2c3d4e5f",
        "fhirServer": sandbox.base_url,
        "fhirAuthorization": fhir_authorization(sandbox.token),
        "context": {"userId": "Practitioner/u", "patientId": LONG_PATIENT},
        **extra,
    }


class TestLongRecord:
    async def test_a_few_hundred_conditions_give_cards_not_412(
        self, sandbox: Any, sandbox_app: Callable[..., Any], clock: SettableClock, long_record: int
    ) -> None:
        clock.now = LONG_AT
        async with sandbox_app() as client:
            response = await client.post(SERVICE_URL, json=long_request(sandbox))
        assert response.status_code == 200, response.text
        assert cards_of(response) == Counter({("R1", "critical"): 1})
        assert "Incomplete data" not in response.text

    async def test_every_condition_is_read_in_one_large_page(self, sandbox: Any, long_record: int) -> None:
        record = await TestPaging.gather(sandbox, None, LONG_PATIENT)
        assert record.gaps == []
        assert record.fetched["conditions"] == long_record

    async def test_a_first_page_that_cannot_be_completed_is_screened_and_says_so(
        self, sandbox: Any, sandbox_app: Callable[..., Any], clock: SettableClock, long_record: int
    ) -> None:
        # The EHR sent the first page of its own search and a token the server refuses:
        # the rest cannot be read, so the service screens the first page (which holds the
        # cancer and the retention) and says the conditions are incomplete.
        with sandbox.client() as http:
            query = {
                "patient": LONG_PATIENT,
                "_count": "50",
                "code": "http://snomed.info/sct|254637007,http://snomed.info/sct|267064002",
            }
            important = http.get(f"{sandbox.base_url}/Condition", params=query).json()
            query = {"patient": LONG_PATIENT, "_count": "50"}
            first_page = http.get(f"{sandbox.base_url}/Condition", params=query).json()
        assert next_link(first_page) is not None
        first_page["entry"] = [*important["entry"], *first_page["entry"][:48]]
        prefetch = dict.fromkeys(PREFETCH_KEYS, EMPTY) | {
            "patient": {"resourceType": "Patient", "id": LONG_PATIENT, "birthDate": "1950-01-01"},
            "conditions": first_page,
        }
        request = long_request(sandbox, prefetch=prefetch) | {"fhirAuthorization": fhir_authorization("wrong-token")}
        clock.now = LONG_AT
        async with sandbox_app() as client:
            response = await client.post(SERVICE_URL, json=request)
        assert response.status_code == 200, response.text
        assert cards_of(response) == Counter({("R1", "critical"): 1})
        detail = response.json()["cards"][0]["detail"]
        assert "Incomplete data, screened as far as read: conditions" in detail
        assert "wrong-token" not in response.text


async def test_unreadable_prefetch_keys_are_fetched_from_the_fhir_server(
    sandbox: Any, sandbox_app: Callable[..., Any], clock: SettableClock
) -> None:
    """Not FHIR, another person's Patient, only another patient's data: read from the server instead."""
    scenario = next(item for item in sandbox.scenarios if item.name.startswith("102-"))
    other = next(item for item in sandbox.scenarios if item.name.startswith("100-"))
    request = without_prefetch(scenario, sandbox)
    request["prefetch"] = copy.deepcopy(scenario.request["prefetch"])
    request["prefetch"]["patient"] = {"resourceType": "Patient", "id": "s100-other", "birthDate": "1948-03-02"}
    request["prefetch"]["conditions"] = [1, 2]
    request["prefetch"]["findings"] = {"resourceType": "Bundle", "type": "searchset", "entry": True}
    request["prefetch"]["labs"] = other.request["prefetch"]["findings"]  # another patient's findings only
    clock.now = scenario.reference_time
    async with sandbox_app() as client:
        response = await client.post(service_path(scenario.request["hook"]), json=request)
        without_token = copy.deepcopy(request)
        del without_token["fhirAuthorization"], without_token["fhirServer"]
        refused = await client.post(service_path(scenario.request["hook"]), json=without_token)
    assert response.status_code == 200, response.text
    assert cards_of(response) == Counter({("R1", "critical"): 1})
    messages = assert_operation_outcome(refused, 412)
    assert any("prefetch key 'conditions': the prefetch value is a JSON array" in message for message in messages)
    assert any("prefetch key 'patient': the prefetch value holds only resources" in message for message in messages)

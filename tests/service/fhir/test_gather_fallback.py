"""The gatherer with the real FhirClient: fallback queries, prefetch paging, the time budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import orjson
import pytest

from cds_hooks.contexts import parse_context
from cds_hooks.errors import PreconditionFailed
from cds_hooks.models import CDSRequest
from service.cli.fhir_access import fhir_authorization
from service.clinical.recordparts import DataGap, RecordPart
from service.fhir.client import FhirClient, build_http_client
from service.fhir.gather import BUDGET_EXCEEDED, PatientDataGatherer
from service.fhir.settings import FhirSettings
from service.prefetch import RECORD_PARTS, REQUIRED_KEYS, build_prefetch_templates
from tests.bundles import searchset

pytestmark = pytest.mark.anyio

BASE = "https://ehr.example.org/fhir"
TOKEN = "gather-token-0b1d"


def codes_of(valueset_id: str) -> Iterable[tuple[str, str]]:
    return [("http://loinc.org", f"{valueset_id}-code")]


TEMPLATES = build_prefetch_templates(codes_of)


PATIENT = {"resourceType": "Patient", "id": "p1"}
OWN = {"reference": "Patient/p1"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": OWN}


def default_answer(request: httpx.Request) -> httpx.Response:
    resource_type = request.url.path.removeprefix("/fhir/").split("/")[0]
    if resource_type == "Patient":
        return httpx.Response(200, content=orjson.dumps(PATIENT))
    if resource_type == "Condition":
        return httpx.Response(200, content=orjson.dumps(searchset(CONDITION)))
    return httpx.Response(200, content=orjson.dumps(searchset()))


class Server:
    def __init__(self, answer: Callable[[httpx.Request], Any] = default_answer) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.answer(request)
        if isinstance(result, httpx.Response):
            return result
        response: httpx.Response = await result
        return response

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def gatherer(server: Server, allowed: list[str] | None = None, budget_s: float = 0.35) -> PatientDataGatherer:
    settings = FhirSettings(allowed_servers=[BASE] if allowed is None else allowed, budget_s=budget_s)
    client = FhirClient(build_http_client(settings, transport=httpx.MockTransport(server)), settings, mode="production")
    return PatientDataGatherer(
        TEMPLATES, REQUIRED_KEYS, client, parts=RECORD_PARTS, max_entries=1000, budget_s=settings.budget_s
    )


def request(prefetch: dict[str, Any] | None = None, fhir_server: str | None = BASE) -> CDSRequest:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/u1", "patientId": "p1"},
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = fhir_authorization(TOKEN)
    if prefetch is not None:
        body["prefetch"] = prefetch
    return CDSRequest.model_validate(body)


async def gather(target: PatientDataGatherer, cds_request: CDSRequest) -> Any:
    return await target.gather(cds_request, parse_context(cds_request.hook, cds_request.context))


async def test_absent_keys_are_fetched_in_parallel_with_the_token() -> None:
    server = Server()
    record = await gather(gatherer(server), request())
    assert record.resources["patient"] == [PATIENT]
    assert record.resources["conditions"] == [CONDITION]
    assert record.gaps == []
    assert set(record.fetched) == set(TEMPLATES)
    assert len(server.requests) == len(TEMPLATES)
    assert {request.headers["Authorization"] for request in server.requests} == {f"Bearer {TOKEN}"}


async def test_null_prefetch_is_never_queried_and_present_keys_are_used() -> None:
    server = Server()
    prefetch = dict.fromkeys(TEMPLATES) | {"patient": PATIENT, "conditions": searchset(CONDITION)}
    del prefetch["labs"]
    record = await gather(gatherer(server), request(prefetch))
    assert server.paths() == ["/fhir/Observation"]
    assert record.fetched == {"labs": 0}
    assert record.resources["findings"] == []


async def test_optional_key_failure_becomes_a_gap() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/DiagnosticReport"):
            return httpx.Response(500)
        return default_answer(request)

    record = await gather(gatherer(Server(answer)), request())
    assert [(gap.key, gap.reason) for gap in record.gaps] == [("imagingReports", "FHIR server error (500)")]
    assert record.resources["conditions"] == [CONDITION]


async def test_required_key_failure_is_412_with_a_safe_reason() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401) if request.url.path.endswith("/Condition") else default_answer(request)

    with pytest.raises(PreconditionFailed) as caught:
        await gather(gatherer(Server(answer)), request())
    assert caught.value.details == ["prefetch key 'conditions': FHIR server refused the access token (401)"]


async def test_server_off_the_allowlist_is_a_gap_and_412_for_required_keys() -> None:
    server = Server()
    with pytest.raises(PreconditionFailed) as caught:
        await gather(gatherer(server, allowed=["https://other.example.org/fhir"]), request())
    assert caught.value.details == [
        "prefetch key 'conditions': fhirServer not on the allowlist",
        "prefetch key 'patient': fhirServer not on the allowlist",
    ]
    assert server.requests == []


async def test_refused_server_with_required_data_prefetched_degrades_to_gaps() -> None:
    server = Server()
    prefetch = {"patient": PATIENT, "conditions": searchset(CONDITION)}
    record = await gather(gatherer(server, allowed=[]), request(prefetch))
    assert {gap.reason for gap in record.gaps} == {"fhirServer not on the allowlist"}
    assert {gap.key for gap in record.gaps} == set(TEMPLATES) - {"patient", "conditions"}
    assert server.requests == []


async def test_slow_query_becomes_a_gap_and_the_others_are_kept() -> None:
    async def hang_on_imaging(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ImagingStudy"):
            await asyncio.Event().wait()
        return default_answer(request)

    record = await gather(gatherer(Server(hang_on_imaging), budget_s=0.1), request())
    assert [(gap.key, gap.reason) for gap in record.gaps] == [("imagingStudies", BUDGET_EXCEEDED)]
    assert record.resources["patient"] == [PATIENT]


async def test_slow_required_query_is_412() -> None:
    async def hang_on_conditions(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Condition"):
            await asyncio.sleep(30)
        return default_answer(request)

    with pytest.raises(PreconditionFailed) as caught:
        await gather(gatherer(Server(hang_on_conditions), budget_s=0.1), request())
    assert caught.value.details == [f"prefetch key 'conditions': {BUDGET_EXCEEDED}"]


class TestPagedPrefetch:
    def prefetch(self, next_url: str) -> dict[str, Any]:
        values: dict[str, Any] = {key: searchset() for key in TEMPLATES}
        values["patient"] = PATIENT
        values["conditions"] = searchset(CONDITION, next_url=next_url)
        return values

    async def test_next_pages_are_fetched_from_fhir_server(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            page = int(request.url.params["page"])
            next_url = f"{BASE}/Condition?patient=p1&page={page + 1}" if page < 3 else None
            return httpx.Response(
                200,
                content=orjson.dumps(
                    searchset({"resourceType": "Condition", "id": f"c{page}", "subject": OWN}, next_url=next_url)
                ),
            )

        server = Server(answer)
        record = await gather(gatherer(server), request(self.prefetch(f"{BASE}/Condition?patient=p1&page=2")))
        assert [resource["id"] for resource in record.resources["conditions"]] == ["c1", "c2", "c3"]
        assert record.fetched == {"conditions": 2}
        assert len(server.requests) == 2

    async def test_next_link_to_another_origin_is_refused(self) -> None:
        # The token never leaves for another origin; the first page is screened and the gap says why.
        server = Server()
        record = await gather(gatherer(server), request(self.prefetch("https://evil.test/fhir/Condition?page=2")))
        assert server.requests == []
        assert record.resources["conditions"] == [CONDITION]
        assert record.gaps == [
            DataGap(
                "conditions",
                "further prefetch pages: URL outside the fhirServer origin refused",
                partial=True,
                part=RecordPart.CONDITIONS,
            )
        ]
        assert server.requests == []

    async def test_paged_prefetch_without_fhir_server_is_a_gap(self) -> None:
        prefetch = self.prefetch(f"{BASE}/Condition?page=2")
        prefetch["labs"] = searchset(
            {"resourceType": "Observation", "id": "o1", "subject": OWN}, next_url=f"{BASE}/Observation?page=2"
        )
        prefetch["conditions"] = searchset(CONDITION)
        record = await gather(gatherer(Server()), request(prefetch, fhir_server=None))
        assert [(gap.key, gap.reason) for gap in record.gaps] == [
            ("labs", "prefetch has further pages and no fhirServer to query")
        ]
        assert record.resources["labs"] == [{"resourceType": "Observation", "id": "o1", "subject": OWN}]

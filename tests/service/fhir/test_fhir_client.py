"""FhirClient against an in-process FHIR server (httpx.MockTransport): paging, failures, token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from service.fhir.client import FhirClient, build_http_client
from service.fhir.gather import BUDGET_EXCEEDED, FhirFetchError
from service.fhir.settings import FhirSettings

pytestmark = pytest.mark.anyio

BASE = "https://ehr.example.org/fhir"
TOKEN = "secret-token-value-7f3a"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": f"{BASE}/Observation"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": resource, "search": {"mode": "match"}} for resource in resources],
    }


def observation(index: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{index}", "status": "final"}


class Recorder:
    """Every request the transport saw, and the answers a test scripts for them."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self._answer(request)
        if isinstance(result, httpx.Response):
            return result
        return await result


def make_client(recorder: Recorder, mode: str = "production", **overrides: Any) -> FhirClient:
    settings = FhirSettings(allowed_servers=[BASE], **overrides)
    http = build_http_client(settings, transport=httpx.MockTransport(recorder))
    return FhirClient(http, settings, mode=mode)  # type: ignore[arg-type]


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"Content-Type": "application/fhir+json", **headers}
    )


async def test_read_returns_the_resource_with_token_and_accept_headers() -> None:
    recorder = Recorder(lambda request: json_response(200, {"resourceType": "Patient", "id": "p1"}))
    resources = await make_client(recorder).fetch(BASE, "Patient/p1", TOKEN)
    assert resources == [{"resourceType": "Patient", "id": "p1"}]
    (request,) = recorder.requests
    assert str(request.url) == f"{BASE}/Patient/p1"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/fhir+json"


async def test_no_token_no_authorization_header() -> None:
    recorder = Recorder(lambda request: json_response(200, bundle([])))
    assert await make_client(recorder).fetch(BASE, "Condition?patient=p1", None) == []
    assert "Authorization" not in recorder.requests[0].headers


async def test_search_follows_next_links_and_collects_every_page() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        next_url = f"{BASE}/Observation?patient=p1&page={page + 1}" if page < 3 else None
        return json_response(200, bundle([observation(page * 10), observation(page * 10 + 1)], next_url))

    recorder = Recorder(answer)
    resources = await make_client(recorder).fetch(BASE, "Observation?patient=p1", TOKEN)
    assert [resource["id"] for resource in resources] == ["o10", "o11", "o20", "o21", "o30", "o31"]
    assert len(recorder.requests) == 3
    assert all(request.headers["Authorization"] == f"Bearer {TOKEN}" for request in recorder.requests)


async def test_page_cap() -> None:
    recorder = Recorder(
        lambda request: json_response(
            200, bundle([observation(1)], f"{BASE}/Observation?page={int(request.url.params.get('page', '1')) + 1}")
        )
    )
    with pytest.raises(FhirFetchError, match="more than 2 pages") as caught:
        await make_client(recorder, max_pages=2).fetch(BASE, "Observation?patient=p1", TOKEN)
    assert len(recorder.requests) == 2
    # what the pages before the cap held is kept: the gatherer screens it as partial data
    assert [resource["id"] for resource in caught.value.partial or ()] == ["o1", "o1"]


async def test_next_link_loop_is_detected() -> None:
    recorder = Recorder(lambda request: json_response(200, bundle([observation(1)], f"{BASE}/Observation?page=1")))
    with pytest.raises(FhirFetchError, match="already read"):
        await make_client(recorder).fetch(BASE, "Observation?page=1", TOKEN)


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.test/fhir/Observation?page=2",
        "http://ehr.example.org/fhir/Observation?page=2",
        "https://ehr.example.org:8443/fhir/Observation?page=2",
        "https://ehr.example.org/other/Observation?page=2",
    ],
)
async def test_next_link_elsewhere_is_refused_and_never_requested(next_url: str) -> None:
    recorder = Recorder(lambda request: json_response(200, bundle([observation(1)], next_url)))
    with pytest.raises(FhirFetchError, match="next page link refused"):
        await make_client(recorder).fetch(BASE, "Observation?patient=p1", TOKEN)
    assert [str(request.url) for request in recorder.requests] == [f"{BASE}/Observation?patient=p1"]


async def test_server_off_the_allowlist_is_never_contacted() -> None:
    recorder = Recorder(lambda request: json_response(200, bundle([])))
    with pytest.raises(FhirFetchError, match="not on the allowlist"):
        await make_client(recorder).fetch("https://evil.test/fhir", "Condition?patient=p1", TOKEN)
    assert recorder.requests == []


async def test_query_climbing_out_of_the_base_is_refused() -> None:
    recorder = Recorder(lambda request: json_response(200, {"resourceType": "Patient"}))
    with pytest.raises(FhirFetchError, match="base path"):
        await make_client(recorder).fetch(BASE, "Patient/../../admin/x", TOKEN)
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "rejected the query (400)"),
        (401, "refused the access token (401)"),
        (403, "denied access (403)"),
        (404, "not found on the FHIR server (404)"),
        (500, "FHIR server error (500)"),
        (502, "FHIR server error (502)"),
        (504, "FHIR server error (504)"),
    ],
)
async def test_failures_that_are_not_retried(status: int, reason: str) -> None:
    recorder = Recorder(
        lambda request: json_response(status, {"resourceType": "OperationOutcome", "issue": []}, **{"Retry-After": "0"})
    )
    with pytest.raises(FhirFetchError) as caught:
        await make_client(recorder).fetch(BASE, "Condition?patient=p1", TOKEN)
    assert reason in caught.value.reason
    assert caught.value.status == status
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_one_retry_after_retry_after(status: int) -> None:
    answers = iter([json_response(status, {}, **{"Retry-After": "0"}), json_response(200, bundle([observation(1)]))])
    recorder = Recorder(lambda request: next(answers))
    resources = await make_client(recorder).fetch(BASE, "Observation?patient=p1", TOKEN)
    assert [resource["id"] for resource in resources] == ["o1"]
    assert len(recorder.requests) == 2


@pytest.mark.parametrize("status", [429, 503])
async def test_at_most_one_retry(status: int) -> None:
    recorder = Recorder(lambda request: json_response(status, {}))
    with pytest.raises(FhirFetchError, match=f"\\({status}\\)"):
        await make_client(recorder, budget_s=5).fetch(BASE, "Observation?patient=p1", TOKEN)
    assert len(recorder.requests) == 2


async def test_retry_after_beyond_the_budget_fails_at_once() -> None:
    recorder = Recorder(lambda request: json_response(429, {}, **{"Retry-After": "120"}))
    with pytest.raises(FhirFetchError, match="a retry would not fit the time budget"):
        await make_client(recorder).fetch(BASE, "Observation?patient=p1", TOKEN)
    assert len(recorder.requests) == 1


async def test_redirect_is_a_failure_and_is_not_followed() -> None:
    recorder = Recorder(lambda request: httpx.Response(302, headers={"Location": "https://evil.test/steal"}))
    with pytest.raises(FhirFetchError, match="redirect \\(302\\), not followed"):
        await make_client(recorder).fetch(BASE, "Condition?patient=p1", TOKEN)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>proxy error</html>", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a FHIR resource"),
        (b'{"entry": []}', "not a FHIR resource"),
        (b'{"resourceType": "OperationOutcome", "issue": []}', "OperationOutcome"),
        (b'{"resourceType": "Patient", "id": "p1"}', "a Patient instead of a search Bundle"),
    ],
)
async def test_garbage_search_bodies(body: bytes, reason: str) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, content=body))
    with pytest.raises(FhirFetchError, match=reason):
        await make_client(recorder).fetch(BASE, "Condition?patient=p1", TOKEN)


async def test_read_of_the_wrong_type_is_refused() -> None:
    recorder = Recorder(lambda request: json_response(200, {"resourceType": "Group", "id": "p1"}))
    with pytest.raises(FhirFetchError, match="a Group for a Patient read"):
        await make_client(recorder).fetch(BASE, "Patient/p1", TOKEN)


async def test_oversized_response_is_refused() -> None:
    recorder = Recorder(lambda request: json_response(200, bundle([observation(index) for index in range(200)])))
    with pytest.raises(FhirFetchError, match="too large"):
        await make_client(recorder, max_response_bytes=2048).fetch(BASE, "Observation?patient=p1", TOKEN)


async def test_unreachable_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to https://ehr.example.org/fhir/Condition?patient=p1")

    with pytest.raises(FhirFetchError) as caught:
        await make_client(Recorder(refuse)).fetch(BASE, "Condition?patient=p1", TOKEN)
    assert caught.value.reason == "FHIR server unreachable (ConnectError)"


async def test_transport_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out")

    with pytest.raises(FhirFetchError, match="did not answer in time"):
        await make_client(Recorder(slow)).fetch(BASE, "Condition?patient=p1", TOKEN)


async def test_a_server_that_never_answers_is_cut_by_the_budget() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(FhirFetchError) as caught:
        await make_client(Recorder(hang), budget_s=0.05, request_timeout_s=0.05).fetch(
            BASE, "Condition?patient=p1", TOKEN
        )
    assert caught.value.reason == BUDGET_EXCEEDED


async def test_connections_per_server_are_capped() -> None:
    in_flight = 0
    peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return json_response(200, bundle([]))

    client = make_client(Recorder(answer), max_connections_per_server=2, budget_s=5, request_timeout_s=5)
    await asyncio.gather(*(client.fetch(BASE, f"Condition?patient=p{index}", TOKEN) for index in range(8)))
    assert peak == 2


async def test_cookies_set_by_one_server_are_never_sent_back() -> None:
    recorder = Recorder(lambda request: json_response(200, bundle([]), **{"Set-Cookie": "session=abc; Path=/"}))
    client = make_client(recorder)
    await client.fetch(BASE, "Condition?patient=p1", TOKEN)
    await client.fetch(BASE, "Condition?patient=p2", "other-user-token")
    assert "Cookie" not in recorder.requests[1].headers


async def test_failure_reasons_and_logs_never_carry_the_token_or_the_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    statuses = iter([401, 403, 404, 429, 500, 503, 302])

    def answer(request: httpx.Request) -> httpx.Response:
        return json_response(next(statuses), {"resourceType": "OperationOutcome", "issue": []}, **{"Retry-After": "60"})

    client = make_client(Recorder(answer))
    reasons = []
    for _ in range(7):
        with pytest.raises(FhirFetchError) as caught:
            await client.fetch(BASE, "Condition?patient=patient-42", TOKEN)
        reasons.append(caught.value.reason)
    for text in [*reasons, caplog.text, *(str(record.__dict__) for record in caplog.records)]:
        assert TOKEN not in text
    assert not any("patient-42" in reason for reason in reasons)

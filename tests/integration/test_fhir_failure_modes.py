"""Failure modes a real FHIR server will not produce on demand, through the whole service.

The service runs in-process (``create_app``) with an ``httpx.MockTransport`` under its
FHIR client: a fake EHR FHIR server that answers every prefetch query with the data of a
scenario, except where a test makes it slow, rate-limited, broken or malicious. Every
request the transport sees is recorded, so the tests can prove where the token went.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from cds_hooks.prefetch import render_template
from service.cli.fhir_access import fhir_authorization
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.origin import resolve_fhir_base
from service.prefetch import build_prefetch_templates
from service.scenarios import Scenario, load_scenarios
from service.settings import DEFAULT_PROFILES_DIR
from tests.outcomes import assert_operation_outcome
from tests.scenarios import card_multiset
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

SERVICE_URL = service_path()
FHIR_SERVER = "https://ehr.example.org/fhir"
TOKEN = "ehr-access-token-93c1f0d2a4"
BUDGET_S = 0.35
#: Room above the budget for the rest of the hook on a loaded 2-core CI machine.
SLACK_S = 0.5
SCENARIO = next(s for s in load_scenarios(DEFAULT_PROFILES_DIR / "examples") if s.expected_cards and s.sandbox)


class FakeEhr:
    """Answers each prefetch query with the scenario's data for that key, unless a fault says otherwise."""

    def __init__(self, scenario: Scenario, templates: dict[str, str]) -> None:
        self.requests: list[httpx.Request] = []
        self.faults: dict[str, Callable[[httpx.Request], Any]] = {}
        base = resolve_fhir_base(FHIR_SERVER, [FHIR_SERVER], "production")
        context = scenario.request["context"]
        self._keys = {self._identity(base.resolve(render_template(t, context))): key for key, t in templates.items()}
        self._data = scenario.request["prefetch"]

    @staticmethod
    def _identity(url: httpx.URL) -> tuple[str, frozenset[tuple[str, str]]]:
        return url.path, frozenset(url.params.multi_items())

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = self._keys.get(self._identity(request.url))
        if key is None:
            return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})
        fault = self.faults.get(key)
        if fault is not None:
            result = fault(request)
            if asyncio.iscoroutine(result):
                result = await result
            if result is not None:
                return result  # type: ignore[no-any-return]
        return httpx.Response(200, content=orjson.dumps(self._data[key]))

    def origins(self) -> set[tuple[str, str, int | None]]:
        return {(request.url.scheme, request.url.host, request.url.port) for request in self.requests}


def no_prefetch(scenario: Scenario) -> dict[str, Any]:
    request = copy.deepcopy(scenario.request)
    request.pop("prefetch", None)
    request["fhirServer"] = FHIR_SERVER
    request["fhirAuthorization"] = fhir_authorization(TOKEN)
    return request


async def hang(request: httpx.Request) -> None:
    """A fault: the server answers far later than any budget."""
    await asyncio.sleep(30)


@pytest.fixture
def templates() -> dict[str, str]:
    return build_prefetch_templates(ValueSetLibrary.load(DEFAULT_PROFILES_DIR / "valuesets").codes_of)


@pytest.fixture
def ehr(templates: dict[str, str]) -> FakeEhr:
    return FakeEhr(SCENARIO, templates)


@pytest.fixture
def call_hook(ehr: FakeEhr, make_settings: Callable[..., Any], running_app: Callable[..., Any]) -> Callable[..., Any]:
    """POST a hook to the in-process service whose FHIR network is ``ehr``; (response, seconds)."""

    async def call(
        request: dict[str, Any] | None = None, *, log_level: str = "INFO", **fhir: Any
    ) -> tuple[httpx.Response, float]:
        fhir.setdefault("allowed_servers", [FHIR_SERVER])
        fhir.setdefault("budget_s", BUDGET_S)
        fhir.setdefault("request_timeout_s", 0.25)
        settings = make_settings(log_level=log_level, **fhir)
        clock = lambda: SCENARIO.reference_time  # noqa: E731
        async with running_app(settings, clock=clock, fhir_transport=httpx.MockTransport(ehr)) as client:
            started = time.perf_counter()
            response = await client.post(SERVICE_URL, json=request or no_prefetch(SCENARIO))
            return response, time.perf_counter() - started

    return call


def precondition_failed(response: httpx.Response) -> list[str]:
    """The diagnostics of a 412: required data the service could not obtain."""
    return assert_operation_outcome(response, 412, "incomplete")


async def test_fallback_through_the_fake_ehr_matches_the_prefetch_answer(
    ehr: FakeEhr, call_hook: Callable[..., Any]
) -> None:
    fallback, _ = await call_hook()
    with_prefetch = copy.deepcopy(SCENARIO.request)
    with_prefetch.pop("fhirServer", None)
    reference, _ = await call_hook(with_prefetch)
    assert fallback.status_code == reference.status_code == 200
    assert card_multiset(fallback.json()["cards"]) == card_multiset(reference.json()["cards"])
    assert len(ehr.requests) == 8  # one query per prefetch key, none while prefetch was complete


async def test_slow_server_on_required_data_is_412_within_the_budget(
    ehr: FakeEhr, call_hook: Callable[..., Any]
) -> None:
    ehr.faults["conditions"] = hang
    response, elapsed = await call_hook()
    assert "prefetch key 'conditions': no answer from the FHIR server within the time budget" in precondition_failed(
        response
    )
    assert elapsed < BUDGET_S + SLACK_S


async def test_slow_server_on_optional_data_answers_within_the_budget(
    ehr: FakeEhr, call_hook: Callable[..., Any]
) -> None:
    ehr.faults["imagingStudies"] = hang
    response, elapsed = await call_hook()
    assert response.status_code == 200
    assert elapsed < BUDGET_S + SLACK_S


async def test_429_with_a_short_retry_after_is_retried_once(ehr: FakeEhr, call_hook: Callable[..., Any]) -> None:
    attempts = []

    def limited_once(request: httpx.Request) -> httpx.Response | None:
        attempts.append(request)
        return httpx.Response(429, headers={"Retry-After": "0"}) if len(attempts) == 1 else None

    ehr.faults["conditions"] = limited_once
    response, _ = await call_hook()
    assert response.status_code == 200
    assert len(attempts) == 2


async def test_429_with_a_retry_after_beyond_the_budget_fails_at_once(
    ehr: FakeEhr, call_hook: Callable[..., Any]
) -> None:
    ehr.faults["conditions"] = lambda request: httpx.Response(429, headers={"Retry-After": "30"})
    response, elapsed = await call_hook()
    assert (
        "prefetch key 'conditions': FHIR server rate limit (429); a retry would not fit the time budget"
        in precondition_failed(response)
    )
    assert elapsed < BUDGET_S + SLACK_S


@pytest.mark.parametrize(("status", "retried"), [(500, False), (502, False), (503, True), (504, False)])
async def test_server_errors(ehr: FakeEhr, call_hook: Callable[..., Any], status: int, retried: bool) -> None:
    seen = []

    def broken(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="upstream trouble")

    ehr.faults["conditions"] = broken
    response, _ = await call_hook()
    assert any(f"FHIR server error ({status})" in line for line in precondition_failed(response))
    assert len(seen) == (2 if retried else 1)


async def test_server_error_on_optional_data_still_screens(ehr: FakeEhr, call_hook: Callable[..., Any]) -> None:
    ehr.faults["labs"] = lambda request: httpx.Response(500)
    response, _ = await call_hook()
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>Gateway</body></html>", "not JSON"),
        (b'{"resourceType": "Bundle"', "not JSON"),
        (b'"just a string"', "not a FHIR resource"),
        (b'{"resourceType": "Basic", "id": "x"}', "sent a Basic for a Patient read"),
    ],
)
async def test_garbage_bodies(ehr: FakeEhr, call_hook: Callable[..., Any], body: bytes, reason: str) -> None:
    ehr.faults["patient"] = lambda request: httpx.Response(200, content=body)
    response, _ = await call_hook()
    assert any(reason in line for line in precondition_failed(response))


async def test_cross_origin_next_link_is_refused_and_never_requested(
    ehr: FakeEhr, call_hook: Callable[..., Any]
) -> None:
    page = copy.deepcopy(SCENARIO.request["prefetch"]["conditions"])
    page["link"] = [{"relation": "next", "url": "https://collector.evil.test/fhir/Condition?page=2"}]
    ehr.faults["conditions"] = lambda request: httpx.Response(200, content=orjson.dumps(page))
    response, _ = await call_hook()
    assert any(
        "next page link refused: URL outside the fhirServer origin refused" in line
        for line in precondition_failed(response)
    )
    assert ehr.origins() == {("https", "ehr.example.org", None)}


async def test_redirect_is_not_followed(ehr: FakeEhr, call_hook: Callable[..., Any]) -> None:
    ehr.faults["conditions"] = lambda request: httpx.Response(
        307, headers={"Location": "https://collector.evil.test/fhir/Condition"}
    )
    response, _ = await call_hook()
    assert any("redirect (307), not followed" in line for line in precondition_failed(response))
    assert ehr.origins() == {("https", "ehr.example.org", None)}


async def test_fhir_server_off_the_allowlist_gets_nothing(ehr: FakeEhr, call_hook: Callable[..., Any]) -> None:
    request = no_prefetch(SCENARIO) | {"fhirServer": "https://collector.evil.test/fhir"}
    response, _ = await call_hook(request)
    assert response.status_code == 412
    assert ehr.requests == []


async def test_token_goes_only_to_the_fhir_server_and_never_into_a_log(
    ehr: FakeEhr, call_hook: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A full hook call per failure mode, with every log record captured at DEBUG."""
    caplog.set_level(logging.DEBUG)
    page = copy.deepcopy(SCENARIO.request["prefetch"]["labs"])
    page["link"] = [{"relation": "next", "url": "https://collector.evil.test/steal"}]
    ehr.faults["labs"] = lambda request: httpx.Response(200, content=orjson.dumps(page))
    ehr.faults["findings"] = lambda request: httpx.Response(302, headers={"Location": "https://collector.evil.test/"})
    ehr.faults["imagingOrders"] = lambda request: httpx.Response(
        401, text=f"bad token {request.headers['Authorization']}"
    )
    ehr.faults["imagingStudies"] = lambda request: httpx.Response(429, headers={"Retry-After": "9"})
    ehr.faults["imagingReports"] = lambda request: httpx.Response(200, content=b"not json")
    response, _ = await call_hook(log_level="DEBUG")
    assert response.status_code == 200
    ehr.faults["conditions"] = lambda request: httpx.Response(500)
    failed, _ = await call_hook(log_level="DEBUG")
    assert failed.status_code == 412
    assert ehr.requests
    assert ehr.origins() == {("https", "ehr.example.org", None)}
    assert {request.headers["Authorization"] for request in ehr.requests} == {f"Bearer {TOKEN}"}
    assert TOKEN not in response.text + failed.text
    assert any(record.levelno == logging.DEBUG for record in caplog.records), "DEBUG records should be captured"
    for record in caplog.records:
        rendered = f"{record.getMessage()} {record.__dict__!r} {record.exc_text or ''}"
        assert TOKEN not in rendered, record.name

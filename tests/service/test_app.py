"""A CDS client playing against ``create_app(...)`` in process: discovery, calls, every status code."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from cds_hooks.models import CDSResponse, DiscoveryResponse, FeedbackRequest
from cds_hooks.prefetch import check_template_subset
from service import __version__
from service.app import create_app
from service.cli.fhir_access import fhir_authorization
from service.prefetch import PREFETCH_KEYS
from service.settings import load_settings
from service.store.settings import StoreSettings
from tests.bundles import searchset
from tests.inprocess import serve_app
from tests.outcomes import assert_operation_outcome
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

#: the scenarios' reference time (DESIGN.md), deliberately not UTC
PINNED = datetime(2026, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
SERVICE = service_path()
EHR = "https://ehr.example.org/fhir"
TOKEN = "opaque-fhir-token-app-test"
HOOKS = ["patient-view", "encounter-start", "order-select", "order-sign"]

PATIENT = {"resourceType": "Patient", "id": "t-patient", "birthDate": "1950-03-01", "gender": "female"}
CONDITION = {
    "resourceType": "Condition",
    "id": "t-cond-1",
    "subject": {"reference": "Patient/t-patient"},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "254637007"}]},
}
DRAFT_ORDER = {
    "resourceType": "ServiceRequest",
    "id": "t-sr-1",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/t-patient"},
    "code": {"text": "Chest X-ray"},
}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


FULL_PREFETCH: dict[str, Any] = {
    "patient": PATIENT,
    "conditions": searchset(CONDITION),
    **{key: searchset() for key in PREFETCH_KEYS[2:]},
}


def hook_request(
    hook: str = "patient-view",
    prefetch: dict[str, Any] | None = None,
    *,
    fhir_server: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "2b7e1ad6-0f57-4bd4-9d5c-0d3f6a1b8c11",
        "context": {"userId": "Practitioner/t-pr", "patientId": "t-patient", **context},
    }
    if hook == "encounter-start":
        body["context"].setdefault("encounterId", "t-enc")
    if hook in ("order-select", "order-sign"):
        body["context"].setdefault("draftOrders", searchset(DRAFT_ORDER))
    if hook == "order-select":
        body["context"].setdefault("selections", ["ServiceRequest/t-sr-1"])
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = fhir_authorization(TOKEN)
    return body


class FakeEhr:
    """The EHR's FHIR server behind an httpx MockTransport: answers every search with one page."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        resource_type = request.url.path.removeprefix("/fhir/").split("/")[0]
        if resource_type == "Patient":
            return httpx.Response(200, json=PATIENT)
        return httpx.Response(200, json=searchset(CONDITION) if resource_type == "Condition" else searchset())

    def resource_types(self) -> list[str]:
        return sorted(request.url.path.removeprefix("/fhir/").split("/")[0] for request in self.requests)


Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def ehr() -> FakeEhr:
    return FakeEhr()


@pytest.fixture
async def client_for(
    clean_mscc_environment: None, store_settings: StoreSettings, ehr: FakeEhr
) -> AsyncIterator[Client]:
    """Build the app for settings overrides, run its lifespan, and talk to it in process."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            settings = load_settings(store=store_settings, fhir={"allowed_servers": [EHR]}, **overrides)
            app = create_app(settings, clock=lambda: PINNED, fhir_transport=httpx.MockTransport(ehr))
            return await stack.enter_async_context(serve_app(app))

        yield make


@pytest.fixture
async def client(client_for: Client) -> httpx.AsyncClient:
    return await client_for()


def assert_cards(response: httpx.Response) -> CDSResponse:
    assert response.status_code == 200, response.text
    return CDSResponse.model_validate(response.json())


# -- discovery ---------------------------------------------------------------------------


async def test_discovery_lists_the_hooks_with_their_prefetch_templates(client: httpx.AsyncClient) -> None:
    response = await client.get("/cds-services")
    assert response.status_code == 200
    discovery = DiscoveryResponse.model_validate(response.json())
    assert [(service.id, service.hook) for service in discovery.services] == [(f"mscc-{hook}", hook) for hook in HOOKS]
    assert len({service.title for service in discovery.services}) == len(HOOKS)
    for service in discovery.services:
        assert service.title and service.description
        # The order hooks' draft orders travel in the context: no template can ask for them.
        assert ("context.draftOrders" in (service.usageRequirements or "")) == service.hook.startswith("order-")
        assert service.prefetch is not None and list(service.prefetch) == list(PREFETCH_KEYS)
        for template in service.prefetch.values():
            check_template_subset(template)
    assert discovery.to_json() == response.json()


# -- calls and the prefetch decision table -----------------------------------------------


@pytest.mark.parametrize("hook", HOOKS)
async def test_a_call_with_full_prefetch_answers_cards_without_querying(
    client: httpx.AsyncClient, ehr: FakeEhr, hook: str
) -> None:
    response = await client.post(service_path(hook), json=hook_request(hook, FULL_PREFETCH, fhir_server=EHR))
    assert_cards(response)
    assert ehr.requests == []


@pytest.mark.parametrize("entry", [True, 7, "x"])
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
async def test_draft_orders_whose_entry_is_not_a_list_are_no_orders_never_a_5xx(
    client: httpx.AsyncClient, hook: str, entry: Any
) -> None:
    drafts = {"resourceType": "Bundle", "type": "collection", "entry": entry}
    body = hook_request(hook, FULL_PREFETCH, draftOrders=drafts)
    response = await client.post(service_path(hook), json=body)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("hook", HOOKS)
async def test_a_service_answers_only_its_own_hook(client: httpx.AsyncClient, hook: str) -> None:
    other = next(service for service in HOOKS if service != hook)
    messages = assert_operation_outcome(
        await client.post(service_path(other), json=hook_request(hook, FULL_PREFETCH, fhir_server=EHR)), 400
    )
    assert any(hook in message for message in messages)


@pytest.mark.parametrize("hook", HOOKS)
async def test_feedback_is_taken_by_each_hook_service(client: httpx.AsyncClient, hook: str) -> None:
    response = await client.post(
        f"{service_path(hook)}/feedback",
        json={"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-06-01T10:05:31Z"}]},
    )
    assert response.status_code == 200, response.text


async def test_the_spec_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SERVICE,
        content=orjson.dumps(hook_request(prefetch=FULL_PREFETCH)),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert_cards(response)


@pytest.mark.parametrize("key", ["patient", "conditions"])
async def test_a_required_key_absent_without_fhir_server_is_412_naming_it(client: httpx.AsyncClient, key: str) -> None:
    prefetch = {k: v for k, v in FULL_PREFETCH.items() if k != key}
    messages = assert_operation_outcome(await client.post(SERVICE, json=hook_request(prefetch=prefetch)), 412)
    assert messages[0] == "Required FHIR data was neither prefetched nor obtainable from the FHIR server."
    assert [message.split(":")[0] for message in messages[1:]] == [f"prefetch key '{key}'"]


async def test_no_prefetch_and_no_fhir_server_names_both_required_keys(client: httpx.AsyncClient) -> None:
    messages = assert_operation_outcome(await client.post(SERVICE, json=hook_request()), 412)
    assert [message.split(":")[0] for message in messages[1:]] == [
        "prefetch key 'conditions'",
        "prefetch key 'patient'",
    ]


async def test_optional_keys_absent_without_fhir_server_still_answer(client: httpx.AsyncClient) -> None:
    prefetch = {"patient": PATIENT, "conditions": searchset(CONDITION)}
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch=prefetch)))


async def test_absent_keys_are_queried_from_fhir_server_with_the_token(client: httpx.AsyncClient, ehr: FakeEhr) -> None:
    prefetch = {k: v for k, v in FULL_PREFETCH.items() if k not in ("conditions", "labs")}
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch=prefetch, fhir_server=EHR)))
    assert ehr.resource_types() == ["Condition", "Observation"]
    assert {request.headers["authorization"] for request in ehr.requests} == {f"Bearer {TOKEN}"}
    assert all(request.url.params["patient"] == "t-patient" for request in ehr.requests)


async def test_null_keys_mean_no_data_and_are_not_re_queried(client: httpx.AsyncClient, ehr: FakeEhr) -> None:
    prefetch = dict.fromkeys(PREFETCH_KEYS)
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch=prefetch, fhir_server=EHR)))
    assert ehr.requests == []


async def test_operation_outcome_keys_are_treated_as_absent(client: httpx.AsyncClient, ehr: FakeEhr) -> None:
    with_outcomes = {**FULL_PREFETCH, "conditions": OUTCOME, "labs": OUTCOME}
    # no fhirServer: the required key is unobtainable, exactly as if it were absent
    messages = assert_operation_outcome(await client.post(SERVICE, json=hook_request(prefetch=with_outcomes)), 412)
    assert [message.split(":")[0] for message in messages[1:]] == ["prefetch key 'conditions'"]
    # an optional key's OperationOutcome alone does not fail the call
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch={**FULL_PREFETCH, "labs": OUTCOME})))
    # with a fhirServer both are fetched again
    assert ehr.requests == []
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch=with_outcomes, fhir_server=EHR)))
    assert ehr.resource_types() == ["Condition", "Observation"]


# -- every status code is an OperationOutcome ---------------------------------------------


async def test_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    assert_operation_outcome(await client.post("/cds-services/no-such-service", json=hook_request()), 404)


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    assert_operation_outcome(await client.get(f"{service_path()}/nothing-here"), 404)
    assert_operation_outcome(await client.get("/"), 404)


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SERVICE, content=b'{"hook": "patient-view",', headers={"content-type": "application/json"}
    )
    [message] = assert_operation_outcome(response, 400)
    assert "not valid JSON" in message


async def test_a_missing_required_field_is_400_naming_it(client: httpx.AsyncClient) -> None:
    body = hook_request(prefetch=FULL_PREFETCH)
    del body["hookInstance"]
    messages = assert_operation_outcome(await client.post(SERVICE, json=body), 400)
    assert "hookInstance: Field required" in messages


async def test_a_hook_the_service_does_not_handle_is_400(client: httpx.AsyncClient) -> None:
    body = {**hook_request(prefetch=FULL_PREFETCH), "hook": "appointment-book"}
    [message] = assert_operation_outcome(await client.post(SERVICE, json=body), 400)
    assert "does not support the hook 'appointment-book'" in message


async def test_encounter_start_without_encounter_is_400(client: httpx.AsyncClient) -> None:
    body = hook_request("encounter-start", FULL_PREFETCH)
    del body["context"]["encounterId"]
    messages = assert_operation_outcome(await client.post(service_path("encounter-start"), json=body), 400)
    assert messages == ["The context does not fit the encounter-start hook.", "context.encounterId: Field required"]


async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(SERVICE, content=b"<hook/>", headers={"content-type": "application/xml"})
    assert_operation_outcome(response, 415)


async def test_a_body_over_the_size_limit_is_413(client_for: Client) -> None:
    small = await client_for(limits={"max_body_bytes": 4096})
    prefetch = copy.deepcopy(FULL_PREFETCH)
    prefetch["patient"]["text"] = {"status": "generated", "div": "<div>" + "x" * 8000 + "</div>"}
    messages = assert_operation_outcome(await small.post(SERVICE, json=hook_request(prefetch=prefetch)), 413)
    assert messages == ["The request body exceeds 4096 bytes."]


async def test_a_body_nested_beyond_the_depth_limit_is_413(client_for: Client) -> None:
    shallow = await client_for(limits={"max_json_depth": 8})
    deep: Any = 1
    for _ in range(10):
        deep = [deep]
    body = {**hook_request(prefetch=FULL_PREFETCH), "extension": {"org.example.deep": deep}}
    assert_operation_outcome(await shallow.post(SERVICE, json=body), 413)


async def test_more_prefetch_resources_than_the_cap_is_413(client_for: Client) -> None:
    capped = await client_for(limits={"max_prefetch_entries": 3})
    prefetch = {**FULL_PREFETCH, "conditions": searchset(*([CONDITION] * 5))}
    assert_operation_outcome(await capped.post(SERVICE, json=hook_request(prefetch=prefetch)), 413)


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    assert_operation_outcome(await client.delete("/cds-services"), 405)


# -- feedback and probes -----------------------------------------------------------------


async def test_feedback_from_the_spec_is_accepted(client: httpx.AsyncClient) -> None:
    feedback = {
        "feedback": [
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
                "outcomeTimestamp": "2021-12-11T10:05:31Z",
            }
        ]
    }
    FeedbackRequest.model_validate(feedback)
    response = await client.post(f"{SERVICE}/feedback", json=feedback)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), dict)


async def test_invalid_feedback_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{SERVICE}/feedback", json={"feedback": [{"card": "c", "outcome": "accepted"}]})
    assert_operation_outcome(response, 400)


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    live = await client.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["knowledgeVersion"]


async def test_the_request_log_counts_the_fhir_queries_of_a_hook_call(
    client: httpx.AsyncClient, ehr: FakeEhr, caplog: pytest.LogCaptureFixture
) -> None:
    # Operations read how often the EHR's FHIR server was queried from the request log line.
    caplog.set_level(logging.INFO, logger="service.request")
    prefetch = {k: v for k, v in FULL_PREFETCH.items() if k not in ("conditions", "labs")}
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch=prefetch, fhir_server=EHR)))
    assert_cards(await client.post(SERVICE, json=hook_request(prefetch=FULL_PREFETCH)))
    lines = [entry.__dict__ for entry in caplog.records if entry.name == "service.request"]
    assert [line.get("fhir_calls") for line in lines] == [2, 0]
    assert len(ehr.requests) == 2

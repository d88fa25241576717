"""The three endpoints over HTTP (in-process ASGI), with a fake CDS Service behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from cds_hooks.body import BodyLimits
from cds_hooks.errors import PreconditionFailed, Unauthorized
from cds_hooks.models import DiscoveryResponse
from cds_hooks.registry import ClientIdentity, ServiceRegistry
from cds_hooks.router import Authenticator, build_router, install_error_handlers
from tests.outcomes import assert_operation_outcome

pytestmark = pytest.mark.anyio

PINNED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
REQUEST = {
    "hook": "patient-view",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {"userId": "Practitioner/pr-1", "patientId": "p-1"},
}
FEEDBACK = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-06-01T09:05:00Z"}]}


def _app(registry: ServiceRegistry, **router_options: Any) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_router(registry, clock=lambda: PINNED, **router_options))
    return app


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[FastAPI], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        # raise_app_exceptions=False: see the 500 the client gets rather than the test's own traceback.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


# -- discovery ---------------------------------------------------------------------------


async def test_discovery_lists_every_service_under_its_own_id(fake_service: Any, client_for: Any) -> None:
    registry = ServiceRegistry([fake_service("echo", "patient-view"), fake_service("b", "order-sign")])
    response = await client_for(_app(registry)).get("/cds-services")
    assert response.status_code == 200
    discovery = DiscoveryResponse.model_validate(response.json())
    assert [(s.id, s.hook) for s in discovery.services] == [("echo", "patient-view"), ("b", "order-sign")]


@pytest.mark.parametrize("example", ["discovery", "discovery-extension"])
async def test_the_spec_discovery_examples_round_trip_and_each_service_answers_at_its_url(
    fake_service: Any, spec_example: Any, client_for: Any, example: str
) -> None:
    document = spec_example(example)
    services = [
        fake_service(definition=definition) for definition in DiscoveryResponse.model_validate(document).services
    ]
    client = client_for(_app(ServiceRegistry(services)))

    assert (await client.get("/cds-services")).json() == document
    for service, entry in zip(services, document["services"], strict=True):
        context = {"userId": "Practitioner/pr-1", "patientId": "p-1"}
        if entry["hook"] in ("order-select", "order-sign"):
            context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
        request = {**REQUEST, "hook": entry["hook"], "context": context}
        answer = await client.post(f"/cds-services/{entry['id']}", json=request)
        assert answer.json()["cards"][0]["summary"] == f"Hook {entry['hook']}"
        feedback = await client.post(f"/cds-services/{entry['id']}/feedback", json=FEEDBACK)
        assert feedback.json() == {"received": 1}
        assert [call[0] for call in service.feedback_calls] == [entry["id"]]
        assert [invocation.service_id for invocation in service.invocations] == [entry["id"]]


async def test_discovery_without_services_is_an_empty_list(client_for: Any) -> None:
    response = await client_for(_app(ServiceRegistry())).get("/cds-services")
    assert (response.status_code, response.json()) == (200, {"services": []})


# -- invoking a service ------------------------------------------------------------------


async def test_a_call_reaches_the_service_and_returns_its_cards(fake_service: Any, client_for: Any) -> None:
    echo = fake_service()
    response = await client_for(_app(ServiceRegistry([echo]))).post("/cds-services/echo", json=REQUEST)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "cards": [{"summary": "Hook patient-view", "indicator": "info", "source": {"label": "Echo"}}]
    }
    [invocation] = echo.invocations
    assert invocation.service_id == "echo"
    assert invocation.request.hookInstance == REQUEST["hookInstance"]
    assert invocation.received_at == PINNED
    assert invocation.client is None


async def test_an_unknown_service_is_404_before_its_body_is_read(fake_service: Any, client_for: Any) -> None:
    response = await client_for(_app(ServiceRegistry([fake_service()]))).post(
        "/cds-services/nope", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert assert_operation_outcome(response, 404, "not-found") == ["No CDS Service with this id."]


async def test_malformed_json_is_400(fake_service: Any, client_for: Any) -> None:
    response = await client_for(_app(ServiceRegistry([fake_service()]))).post(
        "/cds-services/echo", content=b'{"hook": ', headers={"content-type": "application/json"}
    )
    [message] = assert_operation_outcome(response, 400, "structure")
    assert message.startswith("The request body is not valid JSON")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({k: v for k, v in REQUEST.items() if k != "hookInstance"}, "hookInstance: Field required"),
        ({k: v for k, v in REQUEST.items() if k != "context"}, "context: Field required"),
        ({**REQUEST, "hook": ""}, "hook: String should have at least 1 character"),
        ([REQUEST], "body: Input should be a valid dictionary or instance of CDSRequest"),
    ],
)
async def test_a_request_missing_a_required_field_is_400_naming_it(
    fake_service: Any, client_for: Any, body: Any, detail: str
) -> None:
    response = await client_for(_app(ServiceRegistry([fake_service()]))).post("/cds-services/echo", json=body)
    messages = assert_operation_outcome(response, 400, "structure")
    assert messages == ["The body is not a valid CDS Hooks request.", detail]


async def test_a_hook_the_service_does_not_handle_is_400(fake_service: Any, client_for: Any) -> None:
    echo = fake_service()
    response = await client_for(_app(ServiceRegistry([echo]))).post(
        "/cds-services/echo", json={**REQUEST, "hook": "order-sign"}
    )
    assert assert_operation_outcome(response, 400, "not-supported") == [
        "CDS Service 'echo' does not support the hook 'order-sign'."
    ]
    assert echo.invocations == []


async def test_a_non_json_body_is_415(fake_service: Any, client_for: Any) -> None:
    response = await client_for(_app(ServiceRegistry([fake_service()]))).post(
        "/cds-services/echo",
        content=b"hook=patient-view",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_operation_outcome(response, 415, "not-supported")


async def test_a_body_over_the_limit_is_413(fake_service: Any, client_for: Any) -> None:
    app = _app(ServiceRegistry([fake_service()]), limits=BodyLimits(max_bytes=1024, max_depth=16))
    padded = {**REQUEST, "prefetch": {"patient": {"resourceType": "Patient", "text": "x" * 2000}}}
    response = await client_for(app).post("/cds-services/echo", json=padded)
    assert assert_operation_outcome(response, 413, "too-costly") == ["The request body exceeds 1024 bytes."]


async def test_a_body_nested_too_deep_is_413(fake_service: Any, client_for: Any) -> None:
    app = _app(ServiceRegistry([fake_service()]), limits=BodyLimits(max_bytes=4096, max_depth=16))
    deep: Any = "leaf"
    for _ in range(20):
        deep = [deep]
    response = await client_for(app).post("/cds-services/echo", json={**REQUEST, "extension": {"x": deep}})
    assert assert_operation_outcome(response, 413, "too-costly") == ["The request body nests deeper than 16 levels."]


async def test_errors_raised_by_the_service_keep_their_status(fake_service: Any, client_for: Any) -> None:
    failing = fake_service(failure=PreconditionFailed(details=["prefetch key 'patient': not prefetched"]))
    response = await client_for(_app(ServiceRegistry([failing]))).post("/cds-services/echo", json=REQUEST)
    messages = assert_operation_outcome(response, 412, "incomplete")
    assert messages[1] == "prefetch key 'patient': not prefetched"


async def test_an_unexpected_crash_is_a_bare_500(
    fake_service: Any, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    failing = fake_service(failure=RuntimeError("secret internal state p-1"))
    response = await client_for(_app(ServiceRegistry([failing]))).post("/cds-services/echo", json=REQUEST)
    assert assert_operation_outcome(response, 500, "exception") == ["The CDS Service could not process the request."]
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert any(record.name == "cds_hooks" and record.levelname == "ERROR" for record in caplog.records)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/nowhere", 404, "not-found"), ("GET", "/cds-services/echo", 405, "not-supported")],
)
async def test_routing_errors_are_operation_outcomes(
    fake_service: Any, client_for: Any, method: str, path: str, status: int, code: str
) -> None:
    response = await client_for(_app(ServiceRegistry([fake_service()]))).request(method, path)
    assert_operation_outcome(response, status, code)


# -- feedback ----------------------------------------------------------------------------


async def test_feedback_is_handed_to_the_service(fake_service: Any, client_for: Any) -> None:
    echo = fake_service()
    response = await client_for(_app(ServiceRegistry([echo]))).post("/cds-services/echo/feedback", json=FEEDBACK)
    assert (response.status_code, response.json()) == (200, {"received": 1})
    [(service_id, feedback, client)] = echo.feedback_calls
    assert (service_id, feedback.feedback[0].card, client) == ("echo", "c-1", None)


async def test_invalid_feedback_is_400(fake_service: Any, client_for: Any) -> None:
    bad = {"feedback": [{**FEEDBACK["feedback"][0], "outcome": "accepted"}]}
    response = await client_for(_app(ServiceRegistry([fake_service()]))).post("/cds-services/echo/feedback", json=bad)
    messages = assert_operation_outcome(response, 400, "structure")
    assert messages == [
        "The body is not a valid CDS Hooks feedback.",
        "feedback.0: Value error, acceptedSuggestions is required for accepted outcomes",
    ]


async def test_feedback_for_an_unknown_service_is_404(fake_service: Any, client_for: Any) -> None:
    response = await client_for(_app(ServiceRegistry([fake_service()]))).post(
        "/cds-services/no/feedback", json=FEEDBACK
    )
    assert_operation_outcome(response, 404, "not-found")


# -- authentication ----------------------------------------------------------------------


class RecordingAuthenticator:
    """Accepts the token "good", refuses anything else, and remembers each audience."""

    def __init__(self) -> None:
        self.audiences: list[str] = []

    async def __call__(self, request: Request, audience: str) -> ClientIdentity | None:
        self.audiences.append(audience)
        if request.headers.get("authorization") != "Bearer good":
            raise Unauthorized("signature does not verify for kid k-1")
        return ClientIdentity(issuer="https://ehr.example.org", jti="j-1", tenant="t-1")


GOOD = {"authorization": "Bearer good"}


async def test_every_endpoint_checks_the_audience_against_the_public_url(fake_service: Any, client_for: Any) -> None:
    auth = RecordingAuthenticator()
    authenticate: Authenticator = auth
    app = _app(ServiceRegistry([fake_service()]), public_base_url="https://cds.example.org/", authenticate=authenticate)
    client = client_for(app)
    assert (await client.get("/cds-services", headers=GOOD)).status_code == 200
    assert (await client.post("/cds-services/echo", json=REQUEST, headers=GOOD)).status_code == 200
    assert (await client.post("/cds-services/echo/feedback", json=FEEDBACK, headers=GOOD)).status_code == 200
    assert auth.audiences == [
        "https://cds.example.org/cds-services",
        "https://cds.example.org/cds-services/echo",
        "https://cds.example.org/cds-services/echo/feedback",
    ]


async def test_without_a_public_url_the_request_url_is_the_audience(fake_service: Any, client_for: Any) -> None:
    auth = RecordingAuthenticator()
    await client_for(_app(ServiceRegistry([fake_service()]), authenticate=auth)).get("/cds-services", headers=GOOD)
    assert auth.audiences == ["http://testserver/cds-services"]


async def test_the_verified_client_reaches_the_service(fake_service: Any, client_for: Any) -> None:
    echo = fake_service()
    client = client_for(_app(ServiceRegistry([echo]), authenticate=RecordingAuthenticator()))
    await client.post("/cds-services/echo", json=REQUEST, headers=GOOD)
    await client.post("/cds-services/echo/feedback", json=FEEDBACK, headers=GOOD)
    identity = ClientIdentity(issuer="https://ehr.example.org", jti="j-1", tenant="t-1")
    assert echo.invocations[0].client == identity
    assert echo.feedback_calls[0][2] == identity


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cds-services"),
        ("POST", "/cds-services/echo"),
        ("POST", "/cds-services/nope"),
        ("POST", "/cds-services/echo/feedback"),
    ],
)
async def test_a_refused_client_gets_a_bare_401_everywhere(
    fake_service: Any, client_for: Any, method: str, path: str
) -> None:
    echo = fake_service()
    client = client_for(_app(ServiceRegistry([echo]), authenticate=RecordingAuthenticator()))
    response = await client.request(method, path, json=REQUEST, headers={"authorization": "Bearer forged"})
    assert assert_operation_outcome(response, 401, "login") == ["Unauthorized."]
    assert response.headers["www-authenticate"] == "Bearer"
    assert "kid" not in response.text
    assert echo.invocations == [] and echo.feedback_calls == []

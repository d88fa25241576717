"""Input limits and error bodies end to end: caps answer 413/415/400, every error is an
OperationOutcome, unknown fields are tolerated, and nothing ever shows a stack trace."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from cds_hooks.registry import Invocation
from service.app import create_app
from service.logs import AllowlistJsonFormatter
from service.settings import LimitSettings, Settings
from service.store.settings import StoreSettings
from tests.inprocess import serve_app
from tests.outcomes import assert_operation_outcome
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

SERVICE = service_path()
LIMITS = LimitSettings(max_body_bytes=8192, max_json_depth=16, max_prefetch_entries=5)


@pytest.fixture
def limited_app(store_settings: StoreSettings) -> FastAPI:
    return create_app(Settings(limits=LIMITS, store=store_settings))


@pytest.fixture
async def client(limited_app: FastAPI, serve: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(limited_app, "http://127.0.0.1:8080") as started:
        yield started


def bundle(count: int, prefix: str = "lim-cond") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": f"{prefix}-{index}",
                    "subject": {"reference": "Patient/sec-patient-1"},
                }
            }
            for index in range(count)
        ],
    }


async def test_a_body_over_the_cap_is_413(client: httpx.AsyncClient, hook_request: dict[str, Any]) -> None:
    hook_request["context"]["padding"] = "x" * LIMITS.max_body_bytes
    assert_operation_outcome(await client.post(SERVICE, json=hook_request), 413, "too-costly")


async def test_a_chunked_body_over_the_cap_is_413(client: httpx.AsyncClient, hook_request: dict[str, Any]) -> None:
    hook_request["context"]["padding"] = "x" * LIMITS.max_body_bytes
    payload = orjson.dumps(hook_request)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 1024):
            yield payload[start : start + 1024]

    # No Content-Length: the cap must hold while streaming.
    response = await client.post(SERVICE, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_operation_outcome(response, 413, "too-costly")


async def test_nesting_over_the_cap_is_413(client: httpx.AsyncClient, hook_request: dict[str, Any]) -> None:
    nested: Any = "deep"
    for _ in range(LIMITS.max_json_depth + 1):
        nested = {"n": nested}
    hook_request["context"]["nested"] = nested
    assert_operation_outcome(await client.post(SERVICE, json=hook_request), 413, "too-costly")


async def test_prefetch_entries_over_the_cap_are_413(client: httpx.AsyncClient, hook_request: dict[str, Any]) -> None:
    hook_request["prefetch"]["conditions"] = bundle(LIMITS.max_prefetch_entries + 1)
    assert_operation_outcome(await client.post(SERVICE, json=hook_request), 413, "too-costly")


async def test_prefetch_entries_at_the_cap_are_fine(client: httpx.AsyncClient, hook_request: dict[str, Any]) -> None:
    hook_request["prefetch"]["conditions"] = bundle(LIMITS.max_prefetch_entries - 1)  # + the Patient
    assert (await client.post(SERVICE, json=hook_request)).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, hook_request: dict[str, Any], content_type: str
) -> None:
    response = await client.post(SERVICE, content=orjson.dumps(hook_request), headers={"Content-Type": content_type})
    assert_operation_outcome(response, 415, "not-supported")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/fhir+json"]
)
async def test_json_media_types_are_accepted(
    client: httpx.AsyncClient, hook_request: dict[str, Any], content_type: str
) -> None:
    response = await client.post(SERVICE, content=orjson.dumps(hook_request), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


async def test_broken_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(SERVICE, content=b'{"hook": ', headers={"Content-Type": "application/json"})
    assert_operation_outcome(response, 400, "structure")


async def test_a_missing_required_field_is_400_without_echoing_input(
    client: httpx.AsyncClient, hook_request: dict[str, Any]
) -> None:
    del hook_request["hookInstance"]
    hook_request["hook"] = 12345678
    response = await client.post(SERVICE, json=hook_request)
    assert_operation_outcome(response, 400, "structure")
    text = json.dumps(response.json())
    assert "hookInstance" in text
    assert "12345678" not in text and "sec-patient-1" not in text


async def test_unknown_fields_are_tolerated_where_the_spec_allows_extension(
    client: httpx.AsyncClient, hook_request: dict[str, Any]
) -> None:
    hook_request["vendorField"] = {"anything": [1, 2, 3]}
    hook_request["extension"] = {"com.example.trace": "abc"}
    hook_request["context"]["com.example.extra"] = True
    hook_request["prefetch"]["notDeclaredByUs"] = {"resourceType": "Bundle", "type": "searchset"}
    assert (await client.post(SERVICE, json=hook_request)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/cds-services/no-such-service", 404, "not-found"),
        ("GET", SERVICE, 405, "not-supported"),
        ("GET", "/nowhere", 404, "not-found"),
        ("PUT", "/cds-services", 405, "not-supported"),
    ],
)
async def test_routing_errors_are_operation_outcomes(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    assert_operation_outcome(await client.request(method, path, json={}), status, code)


async def test_a_crashing_service_answers_a_bare_500(
    limited_app: FastAPI, hook_request: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Jane Doe born 1950-01-01"

    async def crash(invocation: Invocation) -> Any:
        raise RuntimeError(f"unexpected data for {secret}")

    service = limited_app.state.registry.get("mscc-patient-view")
    service.handle = crash
    caplog.set_level(logging.INFO)
    # raise_app_exceptions=False: Starlette re-raises after answering, as a server would see it.
    async with serve_app(limited_app, "http://127.0.0.1:8080", raise_app_exceptions=False) as client:
        response = await client.post(SERVICE, json=hook_request)
    assert_operation_outcome(response, 500, "exception")
    body = response.json()
    assert secret not in json.dumps(body) and "RuntimeError" not in json.dumps(body)
    formatter = AllowlistJsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"error":"RuntimeError"' in line for line in lines)
    assert any('"http.status":500' in line for line in lines)
    assert all(secret not in line and "Traceback" not in line for line in lines)

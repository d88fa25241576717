"""Client text that could reach storage, logs or FHIR queries is bounded and checked (issue 10, item 6)."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.outcomes import assert_operation_outcome
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

SERVICE = service_path()


@pytest.fixture
def app(store_settings: StoreSettings) -> FastAPI:
    return create_app(Settings(store=store_settings))


@pytest.fixture
async def client(app: FastAPI, serve: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app, "http://127.0.0.1:8080") as started:
        yield started


@pytest.mark.parametrize("hook_instance", ["h-1", "", "x" * 5000, "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\x00", "{uuid}"])
async def test_a_hook_instance_that_is_not_a_uuid_is_400(
    client: httpx.AsyncClient, hook_request: dict[str, Any], hook_instance: str
) -> None:
    hook_request["hookInstance"] = hook_instance
    messages = assert_operation_outcome(await client.post(SERVICE, json=hook_request), 400)
    assert any(message.startswith("hookInstance: Value error, must be a UUID") for message in messages), messages


@pytest.mark.parametrize("field", ["patientId", "encounterId"])
@pytest.mark.parametrize("value", ["p1&_include=*&x=", "p1/../Practitioner/x", "p1 OR 1=1", "p1\x00"])
async def test_context_ids_that_are_not_fhir_ids_are_400(
    client: httpx.AsyncClient, hook_request: dict[str, Any], field: str, value: str
) -> None:
    hook_request["context"][field] = value
    messages = assert_operation_outcome(await client.post(SERVICE, json=hook_request), 400)
    assert f"context.{field}: Value error, must be a FHIR id: 1 to 64 letters, digits, '-' or '.'" in messages
    assert value not in " ".join(messages)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("card",), "d1577c69\x00"),
        (("card",), "x" * 2000),
        (("overrideReason", "reason", "code"), "bad\ncode"),
        (("overrideReason", "reason", "system"), "\x07"),
    ],
)
async def test_feedback_text_with_control_characters_never_reaches_the_database(
    client: httpx.AsyncClient, feedback_body: dict[str, Any], path: tuple[str, ...], value: str
) -> None:
    body = copy.deepcopy(feedback_body)
    node = body["feedback"][0]
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    assert_operation_outcome(await client.post(f"{SERVICE}/feedback", json=body), 400)


async def test_an_unknown_service_id_is_not_logged(
    client: httpx.AsyncClient, hook_request: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.request")
    probe = "no-such-service-<script>"
    assert_operation_outcome(await client.post(f"/cds-services/{probe}", json=hook_request), 404)
    assert_operation_outcome(await client.post(f"/cds-services/{probe}/feedback", json={}), 404)
    await client.post(SERVICE, json=hook_request)
    lines = [record for record in caplog.records if record.name == "service.request"]
    assert len(lines) == 3
    assert [getattr(record, "service_id", None) for record in lines] == [None, None, "mscc-patient-view"]
    assert all(probe not in str(record.__dict__) for record in lines)

"""Client JWTs through the whole app: every endpoint needs one, each with its own audience."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cds_hooks.jwt import ClientTokenVerifier
from service.app import create_app
from service.metrics import Metrics
from service.security.settings import AuthSettings
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.outcomes import assert_operation_outcome
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

TokenFactory = Callable[..., str]
PUBLIC_BASE_URL = "https://cds.example.org"  # as configured by the secure_settings fixture

DISCOVERY = "/cds-services"
SERVICE = service_path()
FEEDBACK = f"{SERVICE}/feedback"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_bare_401(response: httpx.Response) -> None:
    assert assert_operation_outcome(response, 401, "login") == ["Unauthorized."]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_every_endpoint_needs_a_token(
    secure_client: httpx.AsyncClient, hook_request: dict[str, Any], feedback_body: dict[str, Any]
) -> None:
    assert_bare_401(await secure_client.get(DISCOVERY))
    assert_bare_401(await secure_client.post(SERVICE, json=hook_request))
    assert_bare_401(await secure_client.post(FEEDBACK, json=feedback_body))


async def test_each_endpoint_accepts_a_token_for_its_own_url(
    secure_client: httpx.AsyncClient,
    token_for: TokenFactory,
    hook_request: dict[str, Any],
    feedback_body: dict[str, Any],
) -> None:
    discovery = await secure_client.get(DISCOVERY, headers=bearer(token_for(DISCOVERY)))
    assert discovery.status_code == 200, discovery.text
    assert discovery.json()["services"]
    invoked = await secure_client.post(SERVICE, json=hook_request, headers=bearer(token_for(SERVICE)))
    assert invoked.status_code == 200, invoked.text
    assert "cards" in invoked.json()
    feedback = await secure_client.post(FEEDBACK, json=feedback_body, headers=bearer(token_for(FEEDBACK)))
    assert feedback.status_code == 200, feedback.text


@pytest.mark.parametrize(
    ("path", "audience_path"),
    [(DISCOVERY, SERVICE), (SERVICE, DISCOVERY), (SERVICE, FEEDBACK), (FEEDBACK, SERVICE)],
)
async def test_a_token_for_another_endpoint_is_refused(
    secure_client: httpx.AsyncClient,
    token_for: TokenFactory,
    hook_request: dict[str, Any],
    feedback_body: dict[str, Any],
    path: str,
    audience_path: str,
) -> None:
    headers = bearer(token_for(audience_path))
    if path == DISCOVERY:
        response = await secure_client.get(path, headers=headers)
    else:
        response = await secure_client.post(
            path, json=hook_request if path == SERVICE else feedback_body, headers=headers
        )
    assert_bare_401(response)


async def test_audience_is_the_configured_public_url_not_the_request_host(
    secure_app: FastAPI, token_for: TokenFactory, serve: Any
) -> None:
    # Behind a proxy the service is reached as http://10.0.0.7:8080; clients sign for the public URL.
    async with serve(secure_app, "http://10.0.0.7:8080") as internal:
        ok = await internal.get(DISCOVERY, headers=bearer(token_for(DISCOVERY)))
        assert ok.status_code == 200
        host_audience = token_for(DISCOVERY, aud="http://10.0.0.7:8080" + DISCOVERY)
        assert_bare_401(await internal.get(DISCOVERY, headers=bearer(host_audience)))


async def test_a_replayed_token_is_refused(secure_client: httpx.AsyncClient, token_for: TokenFactory) -> None:
    token = token_for(DISCOVERY)
    assert (await secure_client.get(DISCOVERY, headers=bearer(token))).status_code == 200
    assert_bare_401(await secure_client.get(DISCOVERY, headers=bearer(token)))


async def test_authentication_comes_before_the_body_is_read(
    secure_client: httpx.AsyncClient, token_for: TokenFactory
) -> None:
    # No token and a broken body: the caller learns nothing about our parsing.
    response = await secure_client.post(SERVICE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_bare_401(response)
    unknown = await secure_client.post("/cds-services/unknown-service", json={})
    assert_bare_401(unknown)


async def test_rejections_are_counted_and_logged_by_reason_only(
    secure_app: FastAPI, secure_client: httpx.AsyncClient, token_for: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    expired = token_for(DISCOVERY, iat=1_700_000_000, exp=1_700_000_300)
    assert_bare_401(await secure_client.get(DISCOVERY))
    assert_bare_401(await secure_client.get(DISCOVERY, headers=bearer(expired)))

    metrics = secure_app.state.metrics
    assert isinstance(metrics, Metrics)
    exposition = metrics.exposition().decode()
    assert 'cds_auth_rejections_total{reason="missing_token"} 1.0' in exposition
    assert 'cds_auth_rejections_total{reason="expired"} 1.0' in exposition
    assert 'cds_requests_total{outcome="auth_error",route="/cds-services"} 2.0' in exposition

    request_lines = [record for record in caplog.records if record.name == "service.request"]
    assert [getattr(record, "auth_failure", None) for record in request_lines] == ["missing_token", "expired"]
    assert all(expired not in json.dumps(record.__dict__, default=str) for record in caplog.records)


async def test_development_without_issuers_runs_unauthenticated_with_a_warning(
    caplog: pytest.LogCaptureFixture, hook_request: dict[str, Any], store_settings: StoreSettings, serve: Any
) -> None:
    caplog.set_level(logging.WARNING)
    app = create_app(Settings(store=store_settings))
    warnings = [record for record in caplog.records if record.name == "service.security"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "AUTHENTICATION IS OFF" in warnings[0].getMessage()
    async with serve(app, "http://127.0.0.1:8080") as client:
        assert (await client.get(DISCOVERY)).status_code == 200
        assert (await client.post(SERVICE, json=hook_request)).status_code == 200


async def test_development_can_turn_auth_off_explicitly_even_with_issuers(
    secure_settings: Settings, serve: Any
) -> None:
    settings = secure_settings.model_copy(update={"auth": secure_settings.auth.model_copy(update={"enabled": False})})
    app = create_app(settings)
    async with serve(app) as client:
        assert (await client.get(DISCOVERY)).status_code == 200


async def test_shutdown_closes_the_verifier(secure_app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    verifier = secure_app.state.authenticator
    assert isinstance(verifier, ClientTokenVerifier)
    original = verifier.aclose

    async def recording_close() -> None:
        closed.append(True)
        await original()

    monkeypatch.setattr(verifier, "aclose", recording_close)
    async with secure_app.router.lifespan_context(secure_app):
        assert not closed
    assert closed == [True]


def test_auth_settings_reject_enabled_without_issuers() -> None:
    with pytest.raises(ValueError, match="no trusted issuer"):
        AuthSettings(enabled=True)

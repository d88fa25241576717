"""CORS: browser CDS clients preflight every call; only allowlisted origins get through."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.security.cors import install_cors
from service.security.settings import CorsSettings
from service.settings import Settings
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

SANDBOX = "https://sandbox.cds-hooks.org"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


@pytest.fixture
def cors_app(secure_settings: Settings) -> FastAPI:
    return create_app(secure_settings.model_copy(update={"cors": CorsSettings(allow_origins=[SANDBOX])}))


async def test_preflight_from_an_allowed_origin(cors_app: FastAPI, serve: Any) -> None:
    async with serve(cors_app) as client:
        response = await client.options(service_path(), headers=preflight(SANDBOX))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SANDBOX
    allowed_headers = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert {method.strip() for method in response.headers["access-control-allow-methods"].split(",")} == {
        "GET",
        "POST",
        "OPTIONS",
    }
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["access-control-max-age"] == "600"


async def test_preflight_from_another_origin_is_refused(cors_app: FastAPI, serve: Any) -> None:
    async with serve(cors_app) as client:
        response = await client.options("/cds-services", headers=preflight("https://evil.example.org", "GET"))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_for_another_method_is_refused(cors_app: FastAPI, serve: Any) -> None:
    async with serve(cors_app) as client:
        response = await client.options("/cds-services", headers=preflight(SANDBOX, "DELETE"))
    assert response.status_code == 400


async def test_a_401_is_readable_by_the_allowed_browser_client(cors_app: FastAPI, serve: Any) -> None:
    # Without CORS headers on the error, the browser would hide the 401 behind a network error.
    async with serve(cors_app) as client:
        response = await client.get("/cds-services", headers={"Origin": SANDBOX})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == SANDBOX


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:8081", "http://localhost"])
async def test_development_admits_local_origins(secure_settings: Settings, serve: Any, origin: str) -> None:
    app = create_app(secure_settings)
    async with serve(app) as client:
        response = await client.options("/cds-services", headers=preflight(origin, "GET"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    "origin", ["http://localhost.evil.org", "https://localhost:3000", "http://127.0.0.1.evil.org:80", "null"]
)
async def test_development_admits_nothing_that_merely_looks_local(
    secure_settings: Settings, serve: Any, origin: str
) -> None:
    app = create_app(secure_settings)
    async with serve(app) as client:
        response = await client.options("/cds-services", headers=preflight(origin, "GET"))
    assert response.status_code == 400


async def test_outside_development_only_configured_origins_count() -> None:
    app = FastAPI()

    @app.get("/cds-services")
    async def discovery() -> dict[str, list[str]]:
        return {"services": []}

    assert not install_cors(FastAPI(), CorsSettings(), development=False)
    assert install_cors(app, CorsSettings(allow_origins=[SANDBOX]), development=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://cds.example.org") as client:
        local = await client.options("/cds-services", headers=preflight("http://localhost:3000", "GET"))
        sandbox = await client.options("/cds-services", headers=preflight(SANDBOX, "GET"))
    assert local.status_code == 400
    assert sandbox.status_code == 200

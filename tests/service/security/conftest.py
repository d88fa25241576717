"""Fixtures of the security tests: a CDS Client's signing key, its tokens, and an app that checks them."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from service.app import create_app
from service.security.settings import AuthSettings, TrustedIssuerSettings
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.bundles import searchset
from tests.inprocess import serve_app

ISSUER = "https://ehr.example.org"
PUBLIC_BASE_URL = "https://cds.example.org"
KID = "client-key-1"
#: The hook time the service is pinned to (scenario reference time).
REFERENCE_TIME = datetime.fromisoformat("2026-06-01T10:00:00+01:00")


@pytest.fixture(scope="session")
def client_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="session")
def client_jwks(client_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    public = ECAlgorithm.to_jwk(client_key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": KID, "use": "sig", "alg": "ES384"}]}


@pytest.fixture
def token_for(client_key: ec.EllipticCurvePrivateKey) -> Callable[..., str]:
    """``token_for("/cds-services", **claims)``: a fresh ES384 client JWT for that endpoint."""

    def mint(path: str, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": PUBLIC_BASE_URL + path,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return jwt.encode(claims, client_key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})

    return mint


@pytest.fixture
def secure_settings(client_jwks: dict[str, Any], store_settings: StoreSettings) -> Settings:
    return Settings(
        public_base_url=PUBLIC_BASE_URL,
        auth=AuthSettings(issuers=[TrustedIssuerSettings(issuer=ISSUER, jwks=client_jwks)]),
        store=store_settings,
    )


def _serve(app: FastAPI, base_url: str = PUBLIC_BASE_URL) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    # The default origin is the one the client JWTs name in their audience.
    return serve_app(app, base_url)


Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve() -> Serve:
    """``async with serve(app, base_url) as client``: the app started, and a client for it."""
    return _serve


@pytest.fixture
def secure_app(secure_settings: Settings) -> FastAPI:
    return create_app(secure_settings, clock=lambda: REFERENCE_TIME)


@pytest.fixture
async def secure_client(secure_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _serve(secure_app) as client:
        yield client


@pytest.fixture
def hook_request() -> dict[str, Any]:
    """A minimal, complete patient-view call: the required prefetch keys are present."""
    patient_id = "sec-patient-1"
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/sec-user-1", "patientId": patient_id},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": patient_id, "birthDate": "1950-01-01"},
            "conditions": searchset(),
        },
    }


@pytest.fixture
def feedback_body() -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "not-relevant", "system": "https://example.org/reasons"}},
                "outcomeTimestamp": "2026-06-01T10:05:00Z",
            }
        ]
    }

"""Logs: JSON lines with allowlisted fields only; no PHI, token or trace ever reaches them.

The last tests drive every scenario of profiles/examples through the app, with client JWTs,
and search the formatted log output for each patient's ids, names, birth date and for the tokens.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from service.app import create_app
from service.logs import LOG_FIELDS, AllowlistJsonFormatter, RequestLogMiddleware, configure_logging
from service.scenarios import Scenario
from service.security.settings import AuthSettings, TrustedIssuerSettings
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.inprocess import SettableClock
from tests.scenarios import draft_orders, load_scenario, prefetched_resources, scenario_paths
from tests.servicepaths import service_path

BASE_FIELDS = {"ts", "level", "logger", "event"}
#: Written besides the event when one of our own messages has arguments.
OPTIONAL_FIELDS = {"message"}
ISSUER = "https://ehr.example.org"
PUBLIC_BASE_URL = "https://cds.example.org"


def record(msg: Any = "something happened", *args: Any, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    log_record = logging.LogRecord("test", logging.INFO, __file__, 1, msg, args, exc_info)
    log_record.__dict__.update(extra)
    return log_record


def formatted(log_record: logging.LogRecord) -> dict[str, Any]:
    line = AllowlistJsonFormatter().format(log_record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


# -- the formatter ----------------------------------------------------------------------


def test_only_allowlisted_fields_are_written() -> None:
    line = formatted(
        record(
            "hook answered",
            event="hook_answered",
            hook="patient-view",
            hookInstance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            cards=2,
            rule_ids_fired=["R1", "R4a"],
            patient_id="s01-patient",
            patientId="s01-patient",
            authorization="Bearer abc.def.ghi",
            body={"hook": "patient-view"},
            prefetch={"patient": {"id": "s01-patient"}},
            **{"http.status": 200, "duration_s": 0.0123},
        )
    )
    assert set(line) == BASE_FIELDS | {"hook", "hookInstance", "cards", "rule_ids_fired", "http.status", "duration_s"}
    assert line["event"] == "hook_answered"
    assert line["rule_ids_fired"] == ["R1", "R4a"]
    assert "s01-patient" not in json.dumps(line)


def test_the_store_counters_reach_the_log() -> None:
    # the audit queue's drops and failures must be visible to operations
    line = formatted(record("audit events dropped", event="audit_dropped", total=3, count=1, dropped=3))
    assert (line["total"], line["count"], line["dropped"]) == (3, 1, 3)


def test_allowlisted_fields_carry_scalars_only() -> None:
    line = formatted(record(hook={"nested": "s01-patient"}, cards=object(), service_id="x" * 1000))
    assert "hook" not in line and "cards" not in line
    assert line["service_id"] == "x" * 200


def test_message_arguments_are_never_interpolated() -> None:
    line = formatted(record("fetched %s for patient %s", "Observation?patient=s01-patient", "s01-patient"))
    assert line["event"] == "fetched %s for patient %s"
    assert "s01-patient" not in json.dumps(line)


def test_an_exception_is_its_class_name_and_location_only() -> None:
    try:
        raise ValueError("birthDate 1952-09-14 of Margaret Holloway is odd")
    except ValueError:
        exc_info = sys.exc_info()
    line = formatted(record("unhandled error", exc_info=exc_info, event="unhandled_error"))
    assert line["error"] == "ValueError"
    assert line["error_origin"].startswith("test_logs.py:")
    text = json.dumps(line)
    assert "Holloway" not in text and "1952" not in text and "Traceback" not in text


def test_configure_logging_is_idempotent_and_writes_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    configure_logging("INFO")
    configure_logging("INFO")
    ours = [handler for handler in root.handlers if isinstance(handler.formatter, AllowlistJsonFormatter)]
    assert len(ours) == 1
    logging.getLogger("service.test").info("ready", extra={"version": "1.2.3", "patient": "s01-patient"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[-1]["event"] == "ready" and lines[-1]["version"] == "1.2.3"
    assert "patient" not in lines[-1]


@pytest.mark.anyio
async def test_one_line_per_request_even_when_the_app_fails(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom with s01-patient")

    caplog.set_level(logging.INFO, logger="service.request")
    middleware = RequestLogMiddleware(broken)
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    with pytest.raises(RuntimeError):
        await middleware(scope, _no_body, _discard)
    lines = [formatted(entry) for entry in caplog.records if entry.name == "service.request"]
    assert len(lines) == 1
    assert lines[0]["http.status"] == 500 and lines[0]["level"] == "ERROR"
    assert lines[0]["http.route"] == "unmatched"


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Any) -> None:
    return None


# -- every scenario through the app: nothing identifying in the log ---------------------


@pytest.fixture(scope="module")
def client_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def mint(key: ec.EllipticCurvePrivateKey, path: str, tokens: list[str], **overrides: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": PUBLIC_BASE_URL + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(overrides)
    token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})
    tokens.append(token)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def logged_app(client_key: ec.EllipticCurvePrivateKey, store_settings: StoreSettings) -> tuple[FastAPI, SettableClock]:
    jwks = {"keys": [{**ECAlgorithm.to_jwk(client_key.public_key(), as_dict=True), "kid": "k1", "alg": "ES384"}]}
    settings = Settings(
        public_base_url=PUBLIC_BASE_URL,
        auth=AuthSettings(issuers=[TrustedIssuerSettings(issuer=ISSUER, jwks=jwks)]),
        store=store_settings,
        log_level="DEBUG",
    )
    clock = SettableClock()
    return create_app(settings, clock=clock), clock


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def identifying_strings(scenario: Scenario) -> set[str]:
    """What must never be logged: ids of the patient and every resource, names, birth dates, identifiers."""
    found = {scenario.context.get("patientId"), scenario.context.get("encounterId"), scenario.context.get("userId")}
    for resource in [*prefetched_resources(scenario), *draft_orders(scenario)]:
        found.add(resource.get("id"))
        if resource.get("resourceType") == "Patient":
            found.add(resource.get("birthDate"))
            found.update(_strings(resource.get("name")))
            found.update(_strings([identifier.get("value") for identifier in resource.get("identifier") or ()]))
    authorization = scenario.request.get("fhirAuthorization") or {}
    found.add(authorization.get("access_token"))
    # Short strings ("en", "1") would match by accident; ids and names are longer.
    return {value for value in found if isinstance(value, str) and len(value) >= 4}


def assert_clean(lines: list[str], secrets: set[str]) -> None:
    # One alternation, longest first; word-bounded so "s01-patient" does not match "s01-patient-2".
    alternatives = "|".join(re.escape(secret) for secret in sorted(secrets, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    for line in lines:
        parsed = json.loads(line)
        assert set(parsed) <= BASE_FIELDS | OPTIONAL_FIELDS | LOG_FIELDS, line
        leaked = pattern.search(line)
        assert leaked is None, f"{leaked.group(0)!r} logged: {line}"


def test_there_are_scenarios_to_drive() -> None:
    assert len(scenario_paths()) >= 1


@pytest.mark.anyio
async def test_no_scenario_leaves_identifying_data_in_the_log(
    logged_app: tuple[FastAPI, SettableClock],
    client_key: ec.EllipticCurvePrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, clock = logged_app
    scenarios = [load_scenario(path) for path in scenario_paths()]
    assert scenarios
    tokens: list[str] = []
    secrets: set[str] = set()
    statuses: list[int] = []
    capsys.readouterr()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as client:
            for scenario in scenarios:
                secrets |= identifying_strings(scenario)
                clock.now = scenario.reference_time
                service = service_path()
                response = await client.post(service, json=scenario.request, headers=mint(client_key, service, tokens))
                statuses.append(response.status_code)
                cards = response.json().get("cards", []) if response.status_code == 200 else []
                if cards:
                    feedback = {
                        "feedback": [
                            {
                                "card": cards[0]["uuid"],
                                "outcome": "overridden",
                                "outcomeTimestamp": "2026-06-01T10:05:00Z",
                            }
                        ]
                    }
                    path = service + "/feedback"
                    await client.post(path, json=feedback, headers=mint(client_key, path, tokens))
                # A refused token must not be logged either.
                await client.post(service, json=scenario.request, headers=mint(client_key, "/elsewhere", tokens))
            await client.get("/cds-services", headers=mint(client_key, "/cds-services", tokens))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]

    request_lines = [json.loads(line) for line in lines if '"event":"request"' in line]
    assert len(request_lines) >= 2 * len(scenarios) + 1  # the log is not vacuously clean
    assert any(line.get("auth_failure") == "wrong_audience" for line in request_lines)
    assert any(line.get("hookInstance") for line in request_lines)
    assert statuses.count(200) >= 1, statuses
    assert_clean(lines, secrets | set(tokens) | {token.split(".")[1] for token in tokens})


def test_uvicorn_messages_name_their_port() -> None:
    uvicorn_record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Uvicorn running on %s://%s:%d", ("http", "0.0.0.0", 8080), None
    )
    assert formatted(uvicorn_record)["event"] == "Uvicorn running on http://0.0.0.0:8080"


def test_our_own_messages_carry_their_arguments_beside_the_event() -> None:
    ours = logging.LogRecord("service.serve", logging.INFO, __file__, 1, "listening on port %d", (8080,), None)
    ours.__dict__["event"] = "serving"
    line = formatted(ours)
    assert line["event"] == "serving" and line["message"] == "listening on port 8080"


def test_a_startup_os_error_is_its_text() -> None:
    error = OSError(98, "Address already in use")
    line = formatted(logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, error, None, None))
    assert line["event"] == "[Errno 98] Address already in use"

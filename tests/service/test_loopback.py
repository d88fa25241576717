"""The real service under uvicorn on a loopback port: discovery and one call over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_hooks.models import CDSResponse, DiscoveryResponse

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Start-up is imports, value sets and a SQLite migration: about two seconds on a laptop.
#: The generous cap only matters when the machine is overloaded; a healthy run never waits for it.
STARTUP_TIMEOUT_S = 30.0
TOKEN = "loopback-fhir-token-5d2c"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RunningService:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path, metrics_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log
        self.metrics_url = metrics_url

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _wait_until_live(service: RunningService) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            pytest.fail(f"the service exited with {service.process.returncode}:\n{service.log_text()[-4000:]}")
        try:
            if httpx.get(f"{service.base_url}/livez", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"the service did not answer /livez within {STARTUP_TIMEOUT_S} s:\n{service.log_text()[-4000:]}")


@pytest.fixture
def running_service(tmp_path: Path) -> Iterator[RunningService]:
    port, metrics_port = _free_port(), _free_port()
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("MSCC_")}
    env.update(
        MSCC_HOST="127.0.0.1",
        MSCC_STORE__URL=f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}",
        MSCC_LOG_LEVEL="INFO",
        MSCC_METRICS_PORT=str(metrics_port),
    )
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = RunningService(process, f"http://127.0.0.1:{port}", log, f"http://127.0.0.1:{metrics_port}/metrics")
    try:
        _wait_until_live(service)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _patient_view_call(fhir_server: str) -> dict[str, Any]:
    def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}

    return {
        "hook": "patient-view",
        "hookInstance": "6b1d3a8e-3c1f-4f0e-9a55-1f2d7c0b9e41",
        "fhirServer": fhir_server,
        "fhirAuthorization": {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "mscc-cds",
        },
        "context": {"userId": "Practitioner/lb-pr", "patientId": "lb-patient"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "lb-patient", "birthDate": "1950-01-01"},
            "conditions": searchset(),
            "labs": searchset(),
            "findings": searchset(),
            "imagingOrders": searchset(),
            "imagingStudies": searchset(),
            "imagingReports": searchset(),
            "imagingProcedures": searchset(),
        },
    }


def test_discovery_and_a_call_over_real_http(running_service: RunningService) -> None:
    # a loopback port nobody listens on: any query to it is refused at once
    silent_fhir_server = f"http://127.0.0.1:{_free_port()}/fhir"
    with httpx.Client(base_url=running_service.base_url, timeout=10) as client:
        discovery = client.get("/cds-services")
        assert discovery.status_code == 200, discovery.text
        hooks = [service.hook for service in DiscoveryResponse.model_validate(discovery.json()).services]
        assert hooks == ["patient-view", "encounter-start", "order-select", "order-sign"]

        answer = client.post("/cds-services/mscc-screening", json=_patient_view_call(silent_fhir_server))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        CDSResponse.model_validate(answer.json())

        # no prefetch: the service asks the FHIR server (with the token), is refused, answers 412
        unprefetched = {k: v for k, v in _patient_view_call(silent_fhir_server).items() if k != "prefetch"}
        refused = client.post("/cds-services/mscc-screening", json=unprefetched)
        assert refused.status_code == 412, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"

    running_service.process.terminate()
    running_service.process.wait(timeout=10)
    assert TOKEN not in running_service.log_text(), "the FHIR access token reached the log"


def test_metrics_are_scraped_from_their_own_port(running_service: RunningService) -> None:
    assert httpx.get(f"{running_service.base_url}/cds-services", timeout=10).status_code == 200
    scrape = httpx.get(running_service.metrics_url, timeout=10)
    assert scrape.status_code == 200
    assert 'cds_requests_total{outcome="ok",route="/cds-services"} 1.0' in scrape.text
    assert "cds_request_duration_seconds_bucket" in scrape.text
    # and not on the EHR-facing port
    assert httpx.get(f"{running_service.base_url}/metrics", timeout=10).status_code == 404

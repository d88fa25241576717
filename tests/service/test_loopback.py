"""The real service under uvicorn on a loopback port: discovery and one call over real HTTP."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_hooks.models import CDSResponse, DiscoveryResponse
from service.cli.fhir_access import fhir_authorization
from service.prefetch import PREFETCH_KEYS
from tests.bundles import searchset
from tests.processes import free_port, start_service, stop, wait_until_up
from tests.servicepaths import service_path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Start-up is imports, value sets and a SQLite migration: about two seconds on a laptop.
#: The generous cap only matters when the machine is overloaded; a healthy run never waits for it.
STARTUP_TIMEOUT_S = 30.0
TOKEN = "loopback-fhir-token-5d2c"


class RunningService:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path, metrics_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log
        self.metrics_url = metrics_url

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def running_service(tmp_path: Path) -> Iterator[RunningService]:
    port, metrics_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("MSCC_")}
    env.update(
        MSCC_HOST="127.0.0.1",
        MSCC_STORE__URL=f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}",
        MSCC_LOG_LEVEL="INFO",
        MSCC_METRICS_PORT=str(metrics_port),
    )
    log = tmp_path / "service.log"
    process = start_service(port, env, log, cwd=REPO_ROOT)
    service = RunningService(process, f"http://127.0.0.1:{port}", log, f"http://127.0.0.1:{metrics_port}/metrics")
    try:
        wait_until_up(f"{service.base_url}/livez", process, log, timeout_s=STARTUP_TIMEOUT_S)
        yield service
    finally:
        stop(process)


def _patient_view_call(fhir_server: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "6b1d3a8e-3c1f-4f0e-9a55-1f2d7c0b9e41",
        "fhirServer": fhir_server,
        "fhirAuthorization": fhir_authorization(TOKEN),
        "context": {"userId": "Practitioner/lb-pr", "patientId": "lb-patient"},
        # every key, all empty but the Patient
        "prefetch": {key: searchset() for key in PREFETCH_KEYS}
        | {"patient": {"resourceType": "Patient", "id": "lb-patient", "birthDate": "1950-01-01"}},
    }


def test_discovery_and_a_call_over_real_http(running_service: RunningService) -> None:
    # a loopback port nobody listens on: any query to it is refused at once
    silent_fhir_server = f"http://127.0.0.1:{free_port()}/fhir"
    with httpx.Client(base_url=running_service.base_url, timeout=10) as client:
        discovery = client.get("/cds-services")
        assert discovery.status_code == 200, discovery.text
        hooks = [service.hook for service in DiscoveryResponse.model_validate(discovery.json()).services]
        assert hooks == ["patient-view", "encounter-start", "order-select", "order-sign"]

        answer = client.post(service_path(), json=_patient_view_call(silent_fhir_server))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        CDSResponse.model_validate(answer.json())

        # no prefetch: the service asks the FHIR server (with the token), is refused, answers 412
        unprefetched = {k: v for k, v in _patient_view_call(silent_fhir_server).items() if k != "prefetch"}
        refused = client.post(service_path(), json=unprefetched)
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

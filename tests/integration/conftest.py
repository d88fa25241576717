"""A real FHIR server for the integration tests: SEKMET (sekmet-fhir 0.1.1), one per session.

SEKMET lives in its own virtualenv (``.venv-fhir-sandbox`` at the repository root,
git-ignored, reused when it already holds sekmet-fhir 0.1.1): it pulls its own FastAPI
and fhir.resources, which must not constrain ours. The server gets a fresh data
directory and a free loopback port, bearer authentication and no simulator (which would
otherwise "fulfil" ServiceRequests behind our back), and is stopped by its Popen pid.
Every ``sandbox: true`` scenario of profiles/examples is loaded once, dates unshifted:
tests pin the service clock to each scenario's referenceTime.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from service.app import create_app
from service.cli.seed import seed_scenarios
from service.fhir.settings import FhirSettings
from service.scenarios import Scenario, load_scenarios
from service.settings import DEFAULT_PROFILES_DIR, Settings
from service.store.settings import StoreSettings
from tests.inprocess import serve_app
from tests.processes import free_port, start_service, stop, wait_until_up
from tests.toolvenvs import build_tool_venv, exclusively

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_VENV = ROOT / ".venv-fhir-sandbox"
SEKMET_VERSION = "0.1.1"
SANDBOX_TOKEN = "sandbox-token-5d0c9e"
#: Generous on purpose: these tests prove behaviour, not speed, on a 2-core CI machine.
TEST_BUDGET_S = 5.0


@dataclass
class Sandbox:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    scenarios: list[Scenario] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(headers={"Authorization": f"Bearer {token or self.token}"}, timeout=30)

    def transaction(self, resources: list[dict[str, Any]]) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": resource,
                    "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
                }
                for resource in resources
            ],
        }
        with self.client() as http:
            response = http.post(self.base_url, json=bundle, headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 200, response.text


def _sekmet_ready(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "sekmet").exists() or not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('sekmet-fhir'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == SEKMET_VERSION


def _ensure_sandbox_venv() -> Path:
    with exclusively(SANDBOX_VENV):
        if not _sekmet_ready(SANDBOX_VENV):
            # with pip: the README's sandbox walkthrough runs .venv-fhir-sandbox/bin/pip
            install = build_tool_venv(SANDBOX_VENV, f"sekmet-fhir=={SEKMET_VERSION}", with_pip=True)
            if install.returncode != 0 or not _sekmet_ready(SANDBOX_VENV):
                pytest.fail(
                    f"cannot install sekmet-fhir=={SEKMET_VERSION} into {SANDBOX_VENV}:\n{install.stderr[-3000:]}"
                )
    return SANDBOX_VENV / "bin" / "sekmet"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sekmet = _ensure_sandbox_venv()
    workdir = tmp_path_factory.mktemp("sekmet")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/fhir"
    config = workdir / "sandbox.yaml"
    config.write_text(
        "\n".join(
            [
                f"base_url: {base_url}",  # SEKMET builds its absolute next links from it
                "host: 127.0.0.1",
                f"port: {port}",
                f"data_dir: {workdir / 'data'}",
                "simulator: {enabled: false}",
                "log_inbound: false",
                "server_auth:",
                "  types: [bearer]",
                f"  tokens: [{SANDBOX_TOKEN}]",
                "",
            ]
        )
    )
    log = workdir / "sekmet.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(sekmet), "serve", "-c", str(config)], cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(f"{base_url}/metadata", process, log)
        server = Sandbox(base_url=base_url, token=SANDBOX_TOKEN, process=process, log=log)
        server.scenarios = load_scenarios(DEFAULT_PROFILES_DIR / "examples", sandbox_only=True)
        with server.client() as http:
            seed_scenarios(http, base_url, server.scenarios, now=None)
        yield server
    finally:
        stop(process)


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """A loopback port nothing listens on (at the time of asking)."""
    return free_port


@pytest.fixture
def make_settings(store_settings: StoreSettings) -> Callable[..., Settings]:
    """Development-mode settings with a private store; ``fhir`` fields as keyword arguments."""

    def build(*, log_level: str = "INFO", **fhir: Any) -> Settings:
        fhir.setdefault("budget_s", TEST_BUDGET_S)
        fhir.setdefault("request_timeout_s", min(TEST_BUDGET_S, fhir["budget_s"]))
        return Settings(mode="development", store=store_settings, log_level=log_level, fhir=FhirSettings(**fhir))

    return build


@pytest.fixture
def running_app() -> Callable[..., Any]:
    """``async with running_app(settings, clock=..., fhir_transport=...) as client``: the app in-process."""

    @asynccontextmanager
    async def run(
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        fhir_transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings, clock=clock, fhir_transport=fhir_transport)
        async with serve_app(app, "http://mscc.test") as client:
            yield client

    return run


@dataclass(frozen=True)
class ClientKey:
    """A CDS Client's signing key (PEM file) and the JWK Set the service is told to trust."""

    path: Path
    jwks: dict[str, Any]
    issuer: str = "https://cli-client.test"
    kid: str = "cli-test-key"


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    key = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path_factory.mktemp("client") / "client.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": ClientKey.kid, "alg": "ES384", "use": "sig"}
    return ClientKey(path=path, jwks={"keys": [jwk]})


@dataclass(frozen=True)
class ServiceProcess:
    """The service run as its own process: where it answers and where its SQLite store is."""

    url: str
    store: Path


@contextmanager
def service_process(
    sandbox: Sandbox, workdir: Path, service_env: dict[str, str], **settings: str
) -> Iterator[ServiceProcess]:
    """``python -m service serve`` (uvicorn) in development mode, allowed to query ``sandbox``.

    ``settings`` are further ``MSCC_*`` variables (issuers, CORS origins); stopped on exit.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = workdir / "store.sqlite3"
    env = service_env | {
        "MSCC_MODE": "development",
        "MSCC_PUBLIC_BASE_URL": url,
        "MSCC_LOG_LEVEL": "WARNING",
        "MSCC_FHIR__ALLOWED_SERVERS": orjson.dumps([sandbox.base_url]).decode(),
        "MSCC_STORE__URL": f"sqlite+aiosqlite:///{store}",
        **settings,
    }
    log = workdir / "service.log"
    process = start_service(port, env, log, cwd=workdir)
    try:
        wait_until_up(f"{url}/readyz", process, log)
        yield ServiceProcess(url=url, store=store)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def service_url(
    sandbox: Sandbox, client_key: ClientKey, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service as its own process (``python -m service serve``), trusting ``client_key``."""
    issuers = orjson.dumps([{"issuer": client_key.issuer, "jwks": client_key.jwks}]).decode()
    with service_process(
        sandbox, tmp_path_factory.mktemp("service"), service_env, MSCC_AUTH__ISSUERS=issuers
    ) as service:
        yield service.url


@pytest.fixture(scope="session")
def service_env() -> dict[str, str]:
    """A clean environment for subprocesses: no MSCC_* or proxy settings from the caller."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MSCC_") and "proxy" not in name.lower()
    }
    env["PYTHONPATH"] = str(ROOT)
    return env

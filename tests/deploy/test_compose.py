"""deploy/compose.yaml (+ the production override): valid Compose, and safe to run on a hospital host.

Without a Docker engine, the files are validated against the Compose specification schema and
read with PyYAML (which resolves the `<<` merge keys the files use) for the properties that
matter: loopback-only ports, health-gated start order, pinned images, required secrets,
hardening of our containers and proxy/CA passthrough.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ToolRunner = Callable[..., subprocess.CompletedProcess[str]]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PRODUCTION = DEPLOY / "compose.production.yaml"

#: Long-running services allowed to run without a healthcheck, each with the reason.
HEALTHCHECK_EXEMPT = {
    # Distroless image: no shell, curl or wget to run a check with; the `hapi-ready` one-shot
    # polls it from outside instead.
    "hapi": "hapi-ready",
}
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
REQUIRED = re.compile(r"^\$\{(?P<name>\w+):\?[^}]+\}$")
DEFAULTED = re.compile(r"^\$\{\w+:-(?P<default>[^}]*)\}$")

Service = dict[str, Any]


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    loaded = load(COMPOSE)["services"]
    assert isinstance(loaded, dict)
    return loaded


def is_one_shot(service: Service) -> bool:
    return service.get("restart") == "no"


def is_ours(service: Service) -> bool:
    """Built from the repository's Dockerfile."""
    return "build" in service


def conditions(service: Service) -> dict[str, str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "use the long depends_on form so every dependency states its condition"
    return {name: spec["condition"] for name, spec in depends.items()}


@pytest.mark.parametrize("path", [COMPOSE, PRODUCTION, DEPLOY / "compose.replicas.yaml"], ids=lambda path: path.name)
def test_matches_the_compose_specification(run_venv_tool: ToolRunner, path: Path) -> None:
    result = run_venv_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_published_ports_bind_to_loopback_only(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert str(port).startswith("127.0.0.1:"), (name, port)


def test_long_running_services_have_healthchecks(services: dict[str, Service]) -> None:
    for name, service in services.items():
        if is_one_shot(service):
            continue
        if name in HEALTHCHECK_EXEMPT:
            assert "healthcheck" not in service, f"{name} now has a healthcheck: drop its exemption"
            gate = services[HEALTHCHECK_EXEMPT[name]]
            assert is_one_shot(gate) and name in conditions(gate), f"{name} needs its readiness gate"
            continue
        healthcheck = service.get("healthcheck")
        assert healthcheck and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_healthchecks_need_no_curl_or_wget(services: dict[str, Service]) -> None:
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", [])
        command = " ".join(test) if isinstance(test, list) else str(test)
        assert not re.search(r"\b(curl|wget)\b", command), f"{name}: slim and distroless images lack curl/wget"


def test_dependency_conditions_can_be_met(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for target, condition in conditions(service).items():
            assert target in services, (name, target)
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy, which it never is"
            elif condition == "service_completed_successfully":
                assert is_one_shot(services[target]), f"{name} waits for {target} to exit, but it restarts"
            else:
                assert condition == "service_started", (name, target, condition)


def test_service_starts_after_a_healthy_database_and_a_finished_migration(services: dict[str, Service]) -> None:
    assert conditions(services["mscc-cds"]) == {
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    assert services["migrate"]["command"] == ["mscc-cds", "migrate"]
    assert conditions(services["migrate"]) == {"postgres": "service_healthy"}


def test_seed_loads_the_local_fhir_server_once_it_answers(services: dict[str, Service]) -> None:
    seed = services["seed"]
    assert seed["command"] == ["mscc-cds", "seed", "--fhir-server", "http://hapi:8080/fhir"]
    assert conditions(seed) == {"hapi-ready": "service_completed_successfully"}


def test_images_are_pinned(services: dict[str, Service]) -> None:
    for name, service in services.items():
        image = service["image"]
        defaulted = DEFAULTED.match(image)
        reference = defaulted["default"] if defaulted else image
        assert "$" not in reference, f"{name}: image {image!r} must have a pinned default"
        repository, _, tag = reference.split("@")[0].rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {reference} has no version tag"
        if not is_ours(service):
            # Third-party images: an exact version (digits), never a floating major or `latest`.
            assert re.search(r"\d+\.\d+", tag), f"{name}: {reference} is not an exact version"


def test_our_containers_are_hardened(services: dict[str, Service]) -> None:
    ours = {name: service for name, service in services.items() if is_ours(service)}
    assert {"mscc-cds", "migrate"} <= ours.keys()
    for name, service in ours.items():
        assert service.get("read_only") is True, name
        assert "/tmp" in service.get("tmpfs", []), name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name


def test_secrets_are_files_never_environment_variables(services: dict[str, Service]) -> None:
    secret_name = re.compile(r"PASSWORD$|SECRET|TOKEN|PSEUDONYM_KEY|REDIS_URL")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            assert not secret_name.search(key), f"{name}: {key} must be a secret file, not an environment variable"
            assert "PASSWORD" not in str(value), f"{name}: {key} holds a password"
    declared = load(COMPOSE)["secrets"]
    for secret in declared.values():
        # Created by the operator in deploy/secrets/ (git- and docker-ignored), never committed.
        assert secret["file"].startswith("./secrets/"), secret
    for name in ("mscc-cds", "migrate"):
        mounted = {entry["target"]: entry["source"] for entry in services[name]["secrets"]}
        assert mounted == {"MSCC_STORE__PASSWORD": "postgres_password", "MSCC_STORE__PSEUDONYM_KEY": "pseudonym_key"}
        url = services[name]["environment"]["MSCC_STORE__URL"]
        assert url == "postgresql+asyncpg://mscc@postgres:5432/mscc", url
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert postgres["secrets"] == ["postgres_password"]


def test_the_repository_ignores_the_secrets_folder() -> None:
    assert "deploy/secrets/" in (DEPLOY.parent / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_replicas_share_a_replay_cache_that_gates_them(services: dict[str, Service]) -> None:
    replicas = load(DEPLOY / "compose.replicas.yaml")["services"]
    service = replicas["mscc-cds"]
    assert service["deploy"]["replicas"] >= 2
    assert service["environment"]["MSCC_AUTH__REPLAY_REDIS_URL"] == "redis://valkey:6379/0"
    assert service["depends_on"] == {"valkey": {"condition": "service_healthy"}}
    valkey = replicas["valkey"]
    assert "healthcheck" in valkey and "ports" not in valkey
    assert valkey["read_only"] is True and valkey["cap_drop"] == ["ALL"]
    assert re.fullmatch(r"valkey/valkey:\d+\.\d+\.\d+-\w+", valkey["image"])
    # Several replicas need a host port each: the base file takes a range.
    assert services["mscc-cds"]["ports"] == ["127.0.0.1:${MSCC_HOST_PORT:-8080}:8080"]


def test_proxy_and_ca_settings_pass_through_to_our_containers(services: dict[str, Service]) -> None:
    servers = {name for name, service in services.items() if not is_one_shot(service)}
    for name, service in services.items():
        if not is_ours(service):
            continue
        environment = service.get("environment") or {}
        for variable in (*PROXY_VARIABLES, *CA_VARIABLES):
            assert variable in environment, f"{name} does not pass {variable} through"
        for variable in ("NO_PROXY", "no_proxy"):
            bypassed = set(str(environment[variable]).split(","))
            # Traffic between containers must never be sent to the hospital proxy.
            assert servers <= bypassed, f"{name}: {variable} misses {servers - bypassed}"


def test_production_override_requires_production_settings(services: dict[str, Service]) -> None:
    production = load(PRODUCTION)["services"]
    assert {"mscc-cds", "migrate"} <= production.keys() <= services.keys()
    for name, service in production.items():
        assert REQUIRED.match(service["image"]), f"{name}: production must name a released image"
        environment = service["environment"]
        assert environment["MSCC_MODE"] == "production"
        for key in ("MSCC_PUBLIC_BASE_URL", "MSCC_AUTH__ISSUERS", "MSCC_FHIR__ALLOWED_SERVERS"):
            assert REQUIRED.match(str(environment.get(key))), f"{name}: {key} must be required"

"""deploy/k8s/base: renders with kustomize, passes strict schema validation, and meets "restricted".

The base is rendered with `kubectl kustomize` (offline), validated with kubernetes-validate
against the oldest and newest Kubernetes versions we claim, then read with PyYAML for what the
schemas cannot see: Pod Security Standard "restricted", probes on the service's health routes,
selectors that actually select the pods, a NetworkPolicy that admits every served port, and no
committed Secret values.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ToolRunner = Callable[..., subprocess.CompletedProcess[str]]

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = REPO_ROOT / "deploy" / "k8s" / "base"
#: Oldest Kubernetes minor still common in hospital clusters, and the newest with bundled schemas.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def rendered(run_path_tool: ToolRunner) -> str:
    result = run_path_tool("kubectl", "kustomize", BASE)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def manifests(rendered: str) -> dict[str, Manifest]:
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    by_kind = {document["kind"]: document for document in documents}
    assert len(by_kind) == len(documents), "one object per kind is expected in the base"
    return by_kind


@pytest.fixture(scope="module")
def pod(manifests: dict[str, Manifest]) -> Manifest:
    spec = manifests["Deployment"]["spec"]["template"]
    assert isinstance(spec, dict)
    return spec


def containers(pod: Manifest) -> list[Manifest]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]


def service_container(pod: Manifest) -> Manifest:
    (main,) = [container for container in pod["spec"]["containers"] if container["name"] == "mscc-cds"]
    assert isinstance(main, dict)
    return main


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_base_passes_strict_schema_validation(
    run_venv_tool: ToolRunner, rendered: str, tmp_path: Path, version: str
) -> None:
    target = tmp_path / "rendered.yaml"
    target.write_text(rendered, encoding="utf-8")
    result = run_venv_tool("kubernetes-validate", "--strict", "--quiet", "-k", version, target)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pod_meets_the_restricted_pod_security_standard(pod: Manifest) -> None:
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in containers(pod):
        context = container["securityContext"]
        name = container["name"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert not context.get("capabilities", {}).get("add"), name
        assert context.get("privileged", False) is False, name


def test_every_container_has_requests_and_limits(pod: Manifest) -> None:
    for container in containers(pod):
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[kind].keys(), (container["name"], kind)


def test_tmp_is_a_writable_empty_dir_in_every_container(pod: Manifest) -> None:
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    for container in containers(pod):
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], container["name"]


def test_probes_target_the_health_routes_on_the_served_port(pod: Manifest) -> None:
    main = service_container(pod)
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports == {"http": 8080, "metrics": 9464}
    expected = {"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
    for probe, path in expected.items():
        assert main[probe]["httpGet"] == {"path": path, "port": "http"}, probe


def test_migration_runs_before_the_service(pod: Manifest) -> None:
    (migrate,) = pod["spec"]["initContainers"]
    assert migrate["command"] == ["mscc-cds", "migrate"]
    main = service_container(pod)
    # Same image and settings, or the schema migrated is not the one the service expects.
    assert migrate["image"] == main["image"]
    assert migrate["env"] == main["env"] and migrate["envFrom"] == main["envFrom"]


def test_selectors_select_the_pods(manifests: dict[str, Manifest], pod: Manifest) -> None:
    labels = pod["metadata"]["labels"].items()
    selectors = {
        "Deployment": manifests["Deployment"]["spec"]["selector"]["matchLabels"],
        "Service": manifests["Service"]["spec"]["selector"],
        "PodDisruptionBudget": manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        "NetworkPolicy": manifests["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
    }
    for spread in pod["spec"].get("topologySpreadConstraints", []):
        selectors["topologySpreadConstraints"] = spread["labelSelector"]["matchLabels"]
    for owner, selector in selectors.items():
        assert selector and selector.items() <= labels, owner
    target = manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", manifests["Deployment"]["metadata"]["name"])
    # The HPA owns the replica count; a fixed one would fight it on every apply.
    assert "replicas" not in manifests["Deployment"]["spec"]


def test_service_and_network_policy_cover_every_served_port(manifests: dict[str, Manifest], pod: Manifest) -> None:
    served = {(port["name"], port["containerPort"]) for port in service_container(pod)["ports"]}
    target_ports = {port["targetPort"] for port in manifests["Service"]["spec"]["ports"]}
    policy = manifests["NetworkPolicy"]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    admitted = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
    for name, number in served:
        assert name in target_ports or number in target_ports, name
        assert name in admitted or number in admitted, name
    egress_ports = {port["port"] for rule in policy["egress"] for port in rule.get("ports", [])}
    assert 53 in egress_ports, "pods must still resolve DNS"


def test_metrics_are_admitted_from_the_monitoring_namespace_only(manifests: dict[str, Manifest]) -> None:
    rules = [
        rule
        for rule in manifests["NetworkPolicy"]["spec"]["ingress"]
        if {"port": "metrics", "protocol": "TCP"} in rule["ports"]
    ]
    assert len(rules) == 1
    (rule,) = rules
    assert [port["port"] for port in rule["ports"]] == ["metrics"], "the monitoring rule must not open the API port"
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_images_are_pinned_to_the_package_version(pod: Manifest) -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for container in containers(pod):
        image = container["image"]
        assert "@sha256:" in image or image.endswith(f":{version}"), (
            f"{container['name']}: {image} should be the released version {version} (overlays pin a digest)"
        )


def test_no_secret_values_are_committed(manifests: dict[str, Manifest]) -> None:
    assert "Secret" not in manifests
    for path in (REPO_ROOT / "deploy").rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "Secret":
                pytest.fail(f"{path.relative_to(REPO_ROOT)} commits a Secret")

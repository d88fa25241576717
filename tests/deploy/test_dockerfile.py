"""The root Dockerfile and .dockerignore: hadolint-clean, and the invariants hospital IT relies on.

No Docker engine runs here, so the image is checked by reading its recipe: pinned bases, a
numeric non-root user, a health check that works in a slim image, no build tools at run time,
bytecode compiled at build for a read-only root filesystem, and a build context without secrets.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ToolRunner = Callable[..., subprocess.CompletedProcess[str]]

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

# python 3.11 slim on a named Debian release, pinned by patch version and by digest.
PINNED_PYTHON_BASE = re.compile(r"^python:3\.11\.\d+-slim-(bookworm|trixie)@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|gcc|g\+\+|cc|make|build-essential|[\w.+-]+-dev)\b")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions: comment lines dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = pending + line
        pending = ""
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(args.split()), stage))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def env_pairs(instructions: list[Instruction]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for token in shlex.split(instruction.args):
                name, sep, value = token.partition("=")
                assert sep, f"use the ENV key=value form: {instruction.args!r}"
                pairs[name] = value
    return pairs


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(instruction.stage for instruction in instructions)
    return [instruction for instruction in instructions if instruction.stage == last]


@pytest.fixture(scope="module")
def builder_stage(instructions: list[Instruction]) -> list[Instruction]:
    return [instruction for instruction in instructions if instruction.stage == 0]


def only(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [instruction for instruction in stage if instruction.keyword == keyword]


def test_hadolint_reports_nothing(run_venv_tool: ToolRunner) -> None:
    result = run_venv_tool("hadolint", "--no-color", "--failure-threshold", "style", DOCKERFILE)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_build_is_multi_stage_and_runtime_takes_only_wheels(
    instructions: list[Instruction], final_stage: list[Instruction]
) -> None:
    assert max(instruction.stage for instruction in instructions) >= 1
    installs = [run.args for run in only(final_stage, "RUN") if "pip install" in run.args]
    assert len(installs) == 1, installs
    # Offline install of the builder's wheels: nothing is resolved or downloaded at this point.
    assert "--no-index" in installs[0] and "from=builder" in installs[0]


def test_every_stage_uses_the_same_pinned_python_311_slim_base(instructions: list[Instruction]) -> None:
    images = [instruction.args.split()[0] for instruction in only(instructions, "FROM")]
    for image in images:
        assert PINNED_PYTHON_BASE.match(image), f"{image} is not python:3.11.<patch>-slim-<debian>@sha256:<digest>"
    # One base for both stages, so wheels are built against the glibc they will run on.
    assert len(set(images)) == 1, images


def test_final_stage_runs_as_numeric_non_root_user(final_stage: list[Instruction]) -> None:
    users = only(final_stage, "USER")
    assert users, "the final stage must switch to an unprivileged user"
    match = re.fullmatch(r"(\d+):(\d+)", users[-1].args)
    assert match, f"USER {users[-1].args} must be numeric uid:gid so Kubernetes can verify runAsNonRoot"
    assert int(match[1]) != 0 and int(match[2]) != 0


def test_healthcheck_probes_livez_with_the_standard_library(final_stage: list[Instruction]) -> None:
    healthchecks = only(final_stage, "HEALTHCHECK")
    assert len(healthchecks) == 1
    command = healthchecks[0].args
    assert not re.search(r"\b(curl|wget)\b", command), "the slim image has neither curl nor wget"
    assert "urllib" in command and "/livez" in command
    # An inherited HTTP_PROXY must not capture the loopback probe.
    assert "ProxyHandler({})" in command


def test_final_stage_installs_no_build_tools(final_stage: list[Instruction]) -> None:
    for run in only(final_stage, "RUN"):
        assert not BUILD_TOOLS.search(run.args), f"build tooling in the runtime stage: {run.args}"
    removal = " ".join(run.args for run in only(final_stage, "RUN"))
    assert "pip uninstall --yes pip" in removal, "pip should not remain in the runtime image"
    assert env_pairs(final_stage).get("PIP_NO_CACHE_DIR") == "1"


def test_bytecode_is_compiled_at_build_for_a_read_only_root(final_stage: list[Instruction]) -> None:
    env = env_pairs(final_stage)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    runs = " ".join(run.args for run in only(final_stage, "RUN"))
    assert "compileall" in runs and "--compile" in runs


def test_runtime_contract_matches_the_service_settings(final_stage: list[Instruction]) -> None:
    env = env_pairs(final_stage)
    # The container must listen beyond its own loopback for the published port to work.
    assert env["MSCC_HOST"] == "0.0.0.0"
    assert env["MSCC_PORT"] == "8080"
    assert env["MSCC_METRICS_PORT"] == "9464"
    assert [expose.args for expose in only(final_stage, "EXPOSE")] == ["8080 9464"]
    assert env["MSCC_PROFILES_DIR"] == "/app/profiles"
    copies = [copy.args.split() for copy in only(final_stage, "COPY")]
    assert ["profiles/", "/app/profiles/"] in copies
    # The default SQLite store must sit on a volume: the root filesystem is read-only.
    volumes = [path for volume in only(final_stage, "VOLUME") for path in json.loads(volume.args)]
    store = env["MSCC_STORE__URL"]
    assert store.startswith("sqlite+aiosqlite:///"), store
    assert any(store.removeprefix("sqlite+aiosqlite:///").startswith(volume + "/") for volume in volumes)
    cmds = only(final_stage, "CMD")
    assert len(cmds) == 1 and json.loads(cmds[0].args) == ["python", "-m", "service"]
    # No ENTRYPOINT: one-shot containers run `mscc-cds migrate` / `mscc-cds seed` as their command.
    assert not only(final_stage, "ENTRYPOINT")


def test_oci_labels_identify_the_build(final_stage: list[Instruction]) -> None:
    labels = " ".join(label.args for label in only(final_stage, "LABEL"))
    for key in ("source", "revision", "version", "created", "title"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_builder_copies_every_package_and_the_readme(builder_stage: list[Instruction]) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    sources = [source for copy in only(builder_stage, "COPY") for source in copy.args.split()[:-1]]
    # A package added to pyproject.toml but not copied would silently vanish from the image.
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*").rstrip(".")
        assert f"{package}/" in sources, f"package {package} is not copied into the builder"
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        assert any(fnmatch.fnmatch(readme, source) for source in sources), readme


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("path", [".git", ".env", ".env.production", "tests", ".venv", "bench", "secrets"])
def test_dockerignore_keeps_secrets_and_tests_out_of_the_context(path: str) -> None:
    assert any(fnmatch.fnmatch(path, pattern) for pattern in dockerignore_patterns()), path


def test_dockerignore_keeps_what_the_image_needs(instructions: list[Instruction]) -> None:
    sources = [
        source.rstrip("/")
        for copy in only(instructions, "COPY")
        if "--from=" not in copy.args
        for source in copy.args.split()[:-1]
        if not source.startswith("--") and not any(char in source for char in "*?[")
    ]
    assert sources, "expected COPY instructions that read the build context"
    for source in sources:
        for pattern in dockerignore_patterns():
            if pattern.startswith("!"):
                continue
            basename_pattern = pattern.removeprefix("**/")
            hit = fnmatch.fnmatch(source, pattern) or fnmatch.fnmatch(Path(source).name, basename_pattern)
            assert not hit, f".dockerignore pattern {pattern!r} would drop {source!r} from the build"

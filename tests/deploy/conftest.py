"""Fixtures for the deployment-artefact tests: repository paths and the tools they run.

The linters are real executables: hadolint, check-jsonschema and kubernetes-validate come with the
dev extra next to the interpreter running pytest; kubectl (for its built-in kustomize) is part of
the project's machine image. A missing tool fails the test: skipping would let an unchecked
Dockerfile or manifest pass CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.toolvenvs import build_tool_venv, exclusively

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Seconds one tool run may take; each finishes in well under a second offline.
_TOOL_TIMEOUT_S = 120

ToolRunner = Callable[..., "subprocess.CompletedProcess[str]"]


def _run(executable: Path, args: tuple[str | Path, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(executable), *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        timeout=_TOOL_TIMEOUT_S,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="session")
def run_venv_tool() -> ToolRunner:
    """Run a console script installed in the same environment as pytest."""

    def run(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        executable = Path(sys.executable).parent / name
        if not executable.is_file():
            pytest.fail(
                f"{name} is not installed next to {sys.executable}; install the dev extra "
                "(pip install -e '.[dev]') so the deployment artefacts are actually checked",
                pytrace=False,
            )
        return _run(executable, args)

    return run


@pytest.fixture(scope="session")
def run_path_tool() -> ToolRunner:
    """Run a program found on PATH (system tools such as kubectl)."""

    def run(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not on PATH; the deployment tests need it", pytrace=False)
        return _run(Path(found), args)

    return run


#: checkov pins packaging<24 (pytest needs >=24), so it lives in its own virtualenv at the
#: repository root, created on first use like the FHIR sandbox's (.venv-* is git-ignored).
CHECKOV_VERSION = "3.3.30"


def checkov_executable() -> Path:
    venv = REPO_ROOT / ".venv-checkov"
    executable = venv / "bin" / "checkov"
    with exclusively(venv):
        if not executable.is_file():
            install = build_tool_venv(venv, f"checkov=={CHECKOV_VERSION}")
            if install.returncode != 0 or not executable.is_file():
                pytest.fail(f"cannot install checkov=={CHECKOV_VERSION} into {venv}:\n{install.stderr[-3000:]}")
    return executable

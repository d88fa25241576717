"""The image's install steps, run for real in a clean virtualenv (no Docker engine here).

The Dockerfile's builder stage turns requirements/runtime.lock into wheels (``pip wheel
--require-hashes``) and builds the project with ``--no-deps``; the runtime stage installs
them offline (``--no-index --require-hashes``). Run here the same way, these steps prove that
the lock resolves, every hash matches, nothing outside the lock is needed, and the service
imports and starts its CLI without matplotlib or the reload watcher.

Like the image, the builder is the interpreter's own pip (``pip wheel`` installs nothing, so
the test's environment stays untouched), and the runtime environment holds no packaging tools
(the image removes setuptools and wheel before installing): it is a venv made
``--without-pip`` that pip installs into through ``--python``. That, and building the two
wheel sets side by side, halves the CPU time of the test; pip's cache spares the downloads
after the first run. Marked integration like the other tests that need the network or
external programs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.test_dockerfile import DOCKERFILE, parse_dockerfile

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = "requirements/runtime.lock"


def run(*argv: str | Path, cwd: Path = REPO_ROOT) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=1800, check=False, cwd=cwd
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_dockerfile_installs_only_from_the_lock() -> None:
    runs = " ".join(i.args for i in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")) if i.keyword == "RUN")
    assert f"pip wheel --require-hashes --wheel-dir /wheels -r {LOCK}" in runs
    assert "pip wheel --no-deps --wheel-dir /wheels/project ." in runs
    assert "--no-index --find-links=/wheels --require-hashes --compile -r /tmp/runtime.lock" in runs
    assert "--no-index --no-deps --compile /wheels/project/*.whl" in runs


def test_the_lock_installs_into_a_clean_virtualenv_as_the_image_does(tmp_path: Path) -> None:
    pip = (sys.executable, "-m", "pip")
    wheels = tmp_path / "wheels"
    # The builder's two `pip wheel` runs are independent: on two cores they run side by side.
    builders = [
        subprocess.Popen(
            [*pip, "wheel", "-q", *arguments],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for arguments in (
            ("--require-hashes", "--wheel-dir", str(wheels), "-r", LOCK),
            ("--no-deps", "--wheel-dir", str(wheels / "project"), "."),
        )
    ]
    for builder in builders:
        output, _ = builder.communicate(timeout=1800)
        assert builder.returncode == 0, f"{builder.args}:\n{output[-3000:]}"

    runtime = tmp_path / "runtime"
    run(sys.executable, "-m", "venv", "--without-pip", runtime)
    python = runtime / "bin" / "python"
    into_runtime = (*pip, "--python", python)
    run(*into_runtime, "install", "-q", "--no-index", f"--find-links={wheels}", "--require-hashes", "-r", LOCK)
    (project_wheel,) = (wheels / "project").glob("mscc_cds-*.whl")
    run(*into_runtime, "install", "-q", "--no-index", "--no-deps", project_wheel)

    installed = run(*into_runtime, "list", "--format=freeze").lower()
    for absent in ("matplotlib", "watchfiles", "numpy", "setuptools"):
        assert f"{absent}==" not in installed, absent
    assert "mscc-cds==" in installed and "uvicorn==" in installed, installed
    # Outside the repository, so the installed package (not the working copy) is imported.
    assert run(python, "-c", "import service.app, uvloop, httptools; print('ok')", cwd=tmp_path).strip() == "ok"
    assert run(runtime / "bin" / "mscc-cds", "--version", cwd=tmp_path).startswith("mscc-cds ")
    run(*into_runtime, "check")

"""The benches run as modules of the ``bench`` package from the repository root, and say so when run as scripts.

``bench/http.py`` shares its name with the standard library's ``http``: run as a script, its folder would be first on
the path and every library that imports ``http`` would get the bench instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHES = ["run", "http", "population", "audit_latency"]


def _python(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("bench", BENCHES)
def test_a_bench_run_as_a_module_shows_its_help(bench: str) -> None:
    done = _python("-m", f"bench.{bench}", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: ")


@pytest.mark.parametrize("bench", BENCHES)
def test_a_bench_run_as_a_script_names_the_module_command(bench: str) -> None:
    done = _python(str(Path("bench") / f"{bench}.py"), "--help")
    assert done.returncode == 1
    assert f"python -m bench.{bench}" in done.stderr
    assert "Traceback" not in done.stderr

"""Quality gates that run inside the test command: formatting, lint, strict typing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(BIN / "ruff"), "format", "--check", "."], id="ruff-format"),
        pytest.param([str(BIN / "ruff"), "check", "."], id="ruff-lint"),
        pytest.param([str(BIN / "mypy"), "--strict", "cds_hooks", "service", "bench"], id="mypy-strict"),
    ],
)
def test_quality_gate(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(command[1:])} failed:\n{result.stdout}\n{result.stderr}"

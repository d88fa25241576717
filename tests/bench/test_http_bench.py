"""``python -m bench.http --quick`` runs end to end and prints its tables (their figures are not judged here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_http_bench_runs_and_prints_its_tables() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MSCC_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.http", "--quick", "--sizes", "100", "--concurrency", "1", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| 100 |")]
    assert [row.split("|")[3].strip() for row in rows] == ["1", "2"]  # one row per concurrency
    assert all(row.count("×") == 4 for row in rows)  # p50, p99, throughput and CPU ratios
    assert any(line.startswith("| `/livez` |") for line in lines)
    assert any(line.startswith("| idle RSS") for line in lines)
    assert any(line.startswith("| start-up to first discovery answer") for line in lines)
    assert "worker process(es)" in done.stdout

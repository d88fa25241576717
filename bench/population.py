"""Population screening speed: patients per second and peak memory, local engine and Spark local[*].

For each size (default 1,000 and 10,000 synthetic lung-cancer patients with red flags,
``service.population.synthetic``, 20 text-only filler Observations each) the export is
written once, then ``mscc-cds population`` runs in a fresh process per engine. Reported:
wall time (Spark's start-up included), patients per second, and the peak resident memory
of the largest process of the run (``ru_maxrss`` of the children: for Spark that is the
driver JVM or a Python worker, whichever is larger), and the scaling from the first size
to the last. Usage::

    python bench/population.py [--sizes 1000 10000] [--engines local spark] [--work DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from service.population.synthetic import generate_population

AT = datetime.fromisoformat("2026-06-01T10:00:00+01:00")


# Runs the command in a fresh process and prints the peak RSS (KiB) of its largest reaped
# descendant: a process of our own, so that runs never see each other's maximum.
_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _run(export: Path, out: Path, engine: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one ``population`` run in its own process."""
    command = [sys.executable, "-m", "service", "population", str(export), "--at", AT.isoformat()]
    command += ["--out", str(out), "--engine", engine]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *command], check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(done.stdout.strip()) * 1024


def measure(sizes: list[int], engines: list[str], work: Path) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        export = work / f"export-{size}"
        counts = generate_population(export, size, AT, filler=20)
        for engine in engines:
            seconds, peak = _run(export, work / f"out-{size}-{engine}", engine)
            results.append(
                {
                    "patients": size,
                    "resources": sum(counts.values()),
                    "engine": engine,
                    "seconds": seconds,
                    "peak_mb": peak / 2**20,
                }
            )
            print(
                f"{engine:>5} {size:>7,} patients: {seconds:7.1f} s, {size / seconds:7.0f} patients/s, "
                f"peak {peak / 2**20:6.0f} MB",
                file=sys.stderr,
            )
    return results


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| Engine | Patients | Resources | Wall time (s) | Patients/s | Peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        lines.append(
            f"| {row['engine']} | {row['patients']:,} | {row['resources']:,} | {row['seconds']:.1f} | "
            f"{row['patients'] / row['seconds']:,.0f} | {row['peak_mb']:,.0f} |"
        )
    for engine in dict.fromkeys(row["engine"] for row in results):
        rows = [row for row in results if row["engine"] == engine]
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            lines.append(
                f"\n{engine}: {last['patients'] / first['patients']:.0f}x the patients took "
                f"{last['seconds'] / first['seconds']:.1f}x the time and {last['peak_mb'] / first['peak_mb']:.2f}x "
                "the peak memory."
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--engines", nargs="+", default=["local", "spark"], choices=["local", "spark"])
    parser.add_argument("--work", type=Path, help="folder for the exports and results (default: a temporary one)")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        print(report(measure(args.sizes, args.engines, args.work)))
        return 0
    with tempfile.TemporaryDirectory(prefix="mscc-bench-population-") as work:
        print(report(measure(args.sizes, args.engines, Path(work))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

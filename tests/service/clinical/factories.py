"""Small builders of FHIR R4 resources and patient records for the clinical-engine tests.

Times are given as offsets before the pinned hook time ``AT`` (non-UTC on purpose), so a
test reads "3 days ago" instead of a date that drifts with the reference time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from service.clinical.engine import ClinicalScreener
from service.clinical.outcome import Screening
from service.clinical.policy import ClinicalPolicy
from service.clinical.recordparts import DataGap
from service.clinical.valuesets import DEFAULT_VALUESETS_DIR, ValueSetLibrary, ValueSetRecord
from service.fhir.integrity import PatientReferences
from service.fhir.record import PatientRecord
from service.prefetch import RECORD_PARTS

Resource = dict[str, Any]

AT = datetime(2026, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
PATIENT_ID = "p1"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MCODE_PRIMARY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition"
MCODE_SECONDARY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-secondary-cancer-condition"

# Codes used across the tests (all members of the committed value sets).
NSCLC = "254637007"
UPPER_LOBE_CANCER = "372135002"
PANCOAST = "254638002"
URINARY_RETENTION = "267064002"
CORD_COMPRESSION = "71286001"
LUMBAR_RADICULOPATHY = "128196005"
BACKACHE = "161891005"
LOW_BACK_PAIN = "279039007"
THORACIC_BACK_PAIN = "279038004"
NECK_PAIN = "81680005"
BONE_METASTASIS = "94222008"
SHOULDER_PAIN = "45326000"
HAEMOPTYSIS = "66857006"
COUGH = "49727002"
FATIGUE = "84229001"
DYSPNOEA = "267036007"
THROMBOCYTOSIS = "6631009"
BREAST_CANCER = "254837009"
EX_SMOKER = "8517006"
NEVER_SMOKED = "266919005"
SMOKING_UNKNOWN = "266927001"
CALCIUM_MASS = "17861-6"
CALCIUM_MOLAR = "2000-8"
CALCIUM_CORRECTED = "29265-6"
ALBUMIN = "1751-7"
PAIN_SCORE = "72514-3"
SMOKING_STATUS = "72166-2"
MRI_WHOLE_SPINE = "30854-4"
MRI_LUMBAR = "30679-5"
CHEST_XRAY = "30745-4"
BODY_WEIGHT = "29463-7"
WEIGHT_LOSS = "89362005"

_ids = itertools.count(1)


def ago(days: float = 0, hours: float = 0, minutes: float = 0) -> str:
    """An ISO dateTime that long before ``AT``, in the hook's offset."""
    return (AT - timedelta(days=days, hours=hours, minutes=minutes)).isoformat()


def day_ago(days: int) -> str:
    """A FHIR date (no time) that many calendar days before ``AT``."""
    return (AT - timedelta(days=days)).date().isoformat()


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def concept(code: str, system: str = SNOMED, display: str | None = None) -> Resource:
    coding: Resource = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def patient(birth_date: str | None = "1960-03-04", patient_id: str = PATIENT_ID) -> Resource:
    resource: Resource = {"resourceType": "Patient", "id": patient_id}
    if birth_date is not None:
        resource["birthDate"] = birth_date
    return resource


def condition(
    code: str,
    system: str = SNOMED,
    *,
    onset: str | None = None,
    recorded: str | None = None,
    clinical: str | None = None,
    verification: str | None = None,
    abated: str | None = None,
    profile: str | None = None,
    body_site: str | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "id": _id("cond"),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": concept(code, system),
    }
    if onset is not None:
        resource["onsetDateTime"] = onset
    if recorded is not None:
        resource["recordedDate"] = recorded
    if clinical is not None:
        resource["clinicalStatus"] = concept(clinical, CLINICAL)
    if verification is not None:
        resource["verificationStatus"] = concept(verification, VERIFICATION)
    if abated is not None:
        resource["abatementDateTime"] = abated
    if profile is not None:
        resource["meta"] = {"profile": [profile]}
    if body_site is not None:
        resource["bodySite"] = [concept(body_site)]
    resource.update(extra)
    return resource


def observation(
    code: str,
    system: str = LOINC,
    *,
    value: float | None = None,
    unit: str | None = None,
    effective: str | None = None,
    status: str = "final",
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": status,
        "code": concept(code, system),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if effective is not None:
        resource["effectiveDateTime"] = effective
    if value is not None:
        quantity: Resource = {"value": value}
        if unit is not None:
            quantity.update({"unit": unit, "system": UCUM, "code": unit})
        resource["valueQuantity"] = quantity
    resource.update(extra)
    return resource


def smoking(answer: str, *, effective: str | None = None) -> Resource:
    return observation(
        SMOKING_STATUS, effective=effective or ago(days=100), valueCodeableConcept=concept(answer, SNOMED)
    )


def order(code: str, *, authored: str | None, status: str = "active", system: str = LOINC, **extra: Any) -> Resource:
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "id": _id("sr"),
        "status": status,
        "intent": "order",
        "code": concept(code, system),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if authored is not None:
        resource["authoredOn"] = authored
    resource.update(extra)
    return resource


def study(code: str, *, started: str, status: str = "available", system: str = LOINC) -> Resource:
    return {
        "resourceType": "ImagingStudy",
        "id": _id("img"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "started": started,
        "procedureCode": [concept(code, system)],
    }


def report(
    code: str, *, effective: str | None, issued: str | None = None, status: str = "final", system: str = LOINC
) -> Resource:
    resource: Resource = {
        "resourceType": "DiagnosticReport",
        "id": _id("dr"),
        "status": status,
        "code": concept(code, system),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if effective is not None:
        resource["effectiveDateTime"] = effective
    if issued is not None:
        resource["issued"] = issued
    return resource


def procedure(code: str, *, performed: str, status: str = "completed", system: str = LOINC) -> Resource:
    return {
        "resourceType": "Procedure",
        "id": _id("proc"),
        "status": status,
        "code": concept(code, system),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "performedDateTime": performed,
    }


def record(
    *resources: Resource,
    birth_date: str | None = "1960-03-04",
    gaps: Iterable[str] = (),
    drafts: Iterable[Resource] = (),
    references: PatientReferences | None = None,
) -> PatientRecord:
    """A record holding the Patient and ``resources`` under one key, plus gaps of the named prefetch keys.

    ``references``: how the hook read the request's references (its fhirServer and Bundle entries).
    """
    return PatientRecord(
        patient_id=PATIENT_ID,
        resources={"patient": [patient(birth_date)], "everything": list(resources)},
        draft_orders=list(drafts),
        gaps=[DataGap(key, "not prefetched and no fhirServer to query", part=RECORD_PARTS[key]) for key in gaps],
        references=references,
    )


_LIBRARY: ValueSetLibrary | None = None


def library() -> ValueSetLibrary:
    """The committed value sets, loaded once per test session."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = ValueSetLibrary.load(DEFAULT_VALUESETS_DIR)
    return _LIBRARY


def custom_library(
    *, without: Iterable[str] = (), extra: dict[str, Iterable[tuple[str, str]]] | None = None
) -> ValueSetLibrary:
    """The committed value sets minus ``without`` (as if they had no verified codes), plus ``extra``."""
    full = library()
    dropped = set(without)
    records = {vs_id: full.get(vs_id) for vs_id in full.ids if vs_id not in dropped}
    for vs_id, codes in (extra or {}).items():
        records[vs_id] = ValueSetRecord(vs_id, f"https://example.org/ValueSet/{vs_id}", "0", vs_id, frozenset(codes))
    index: dict[tuple[str, str], frozenset[str]] = {}
    displays: dict[tuple[str, str], str] = {}
    for vs_id, entry in records.items():
        for coding in entry.codes:
            index[coding] = index.get(coding, frozenset()) | {vs_id}
            shown = full.display_of(*coding)
            if shown:
                displays[coding] = shown
    return ValueSetLibrary(records, index, displays)


def screen(
    patient_record: PatientRecord,
    *,
    policy: ClinicalPolicy | None = None,
    valuesets: ValueSetLibrary | None = None,
    at: datetime = AT,
) -> Screening:
    return ClinicalScreener(valuesets or library(), policy or ClinicalPolicy()).screen(patient_record, at)


def cards_of(screening: Screening) -> list[tuple[str, str]]:
    """(rule id, indicator) of each card, as the golden scenarios state them."""
    return [(card.source.topic.code, card.indicator) for card in screening.cards if card.source.topic]


def outcome(screening: Screening, rule_id: str) -> str:
    return next(item.result for item in screening.rules if item.rule_id == rule_id)

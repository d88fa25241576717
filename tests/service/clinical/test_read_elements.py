"""Only the elements the readers use are validated; what R4B requires, or does not know, still is."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation

from service.clinical.elements import ReadElements
from service.clinical.policy import ClinicalPolicy
from service.clinical.snapshot import SnapshotResult
from service.clinical.snapshot_reader import build_snapshot
from service.fhir.record import PatientRecord
from tests.service.clinical.factories import (
    AT,
    CALCIUM_MASS,
    MCODE_PRIMARY,
    NSCLC,
    PATIENT_ID,
    Resource,
    ago,
    condition,
    library,
    observation,
    record,
)


def snap(*resources: Resource) -> SnapshotResult:
    return build_snapshot(record(*resources), AT, library(), ClinicalPolicy())


@pytest.mark.parametrize(
    "unread",
    [
        {"encounter": {"reference": 5}},
        {"category": [{"coding": "not a list"}]},
        {"note": [None]},
        {"extension": [{"url": 5}]},
        {"evidence": "not a list"},
        {"onsetDateTime": ago(3), "recorder": {"display": ["x"]}},
        {"meta": {"lastUpdated": "yesterday", "versionId": 5, "tag": "x"}},
    ],
)
def test_an_error_in_an_element_no_rule_reads_no_longer_drops_a_condition(unread: dict[str, Any]) -> None:
    result = snap(condition(NSCLC, **unread))
    assert [item.concept.code for item in result.snapshot.findings] == [NSCLC]
    assert result.notes == ()


def test_an_error_in_an_element_no_rule_reads_no_longer_drops_a_result() -> None:
    lab = observation(
        CALCIUM_MASS,
        value=12,
        unit="mg/dL",
        effective=ago(1),
        referenceRange=[{"low": {"value": "low"}}],
        interpretation="high",
        performer=[{"reference": 5}],
    )
    result = snap(lab)
    assert len(result.snapshot.measurements) == 1 and result.notes == ()


@pytest.mark.parametrize(
    ("resource", "place"),
    [
        (condition(NSCLC, onset="last spring"), "onsetDateTime"),
        (condition(NSCLC, clinicalStatus={"coding": [{"code": " active"}]}), "clinicalStatus.coding.0.code"),
        (condition(NSCLC, bodySite="lung"), "bodySite"),
        (condition(NSCLC, meta={"profile": [5]}), "meta.profile.0"),
        (condition(NSCLC, meta=[{"profile": [MCODE_PRIMARY]}]), "meta"),
        (condition(NSCLC, onsetDateTime=ago(3), onsetString="three days ago"), "resource"),
        ({key: value for key, value in condition(NSCLC).items() if key != "subject"}, "subject"),
    ],
)
def test_an_error_in_what_is_read_or_required_still_drops_it(resource: Resource, place: str) -> None:
    result = snap(resource)
    assert result.snapshot.findings == ()
    assert len(result.notes) == 1
    assert result.notes[0].startswith(f"Condition skipped: not valid FHIR R4B ({place}: ")


def test_required_elements_are_kept_even_when_not_read() -> None:
    assert {"status", "code", "resourceType"} <= ReadElements(Observation, ("id",)).kept
    assert "subject" in ReadElements(Condition, ("id",)).kept


@pytest.mark.parametrize("subject", [{"reference": 5}, "Patient/1", [{"reference": "Patient/1"}]])
def test_a_required_element_no_rule_reads_need_only_be_present(subject: object) -> None:
    result = snap(condition(NSCLC, subject=subject))
    assert [item.concept.code for item in result.snapshot.findings] == [NSCLC]
    assert result.notes == ()


@pytest.mark.parametrize("subject", [None, "absent"])
def test_a_required_element_that_is_missing_or_null_still_drops_the_resource(subject: object) -> None:
    resource = condition(NSCLC, subject=subject)
    if subject == "absent":
        del resource["subject"]
    result = snap(resource)
    assert result.snapshot.findings == ()
    assert result.notes == ("Condition skipped: not valid FHIR R4B (subject: missing)",)


def test_read_elements_keep_choices_whole_required_elements_and_primitive_extensions() -> None:
    elements = ReadElements(Condition, ("onsetDateTime", "recordedDate"))
    assert {"onsetDateTime", "onsetPeriod", "onsetString", "onsetAge", "onsetRange"} <= elements.kept
    assert {"recordedDate", "_recordedDate", "_onsetDateTime", "subject"} <= elements.kept
    assert "encounter" not in elements.kept and "abatementDateTime" not in elements.kept
    raw = {"resourceType": "Condition", "onsetDateTime": "2026", "note": [{"text": "x"}], "nonsense": 1}
    assert elements.of(raw) == {"resourceType": "Condition", "onsetDateTime": "2026", "nonsense": 1}


def test_read_elements_refuse_an_element_the_type_does_not_have() -> None:
    with pytest.raises(ValueError, match="effective"):
        ReadElements(Condition, ("effective[x]",))
    with pytest.raises(ValueError, match="valueQuantity"):
        ReadElements(Condition, ("valueQuantity",))


def test_an_invalid_birth_date_is_noted_as_when_the_patient_was_validated() -> None:
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1960-13"}
    result = build_snapshot(PatientRecord(PATIENT_ID, {"patient": [patient]}), AT, library(), ClinicalPolicy())
    assert result.snapshot.age is None
    assert result.notes == ("Patient skipped: not valid FHIR R4B (birthDate: value_error)",)


def test_a_broken_patient_extension_does_not_hide_the_age() -> None:
    patient = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "birthDate": "1960-03-04",
        "extension": [{"url": 5, "valueString": ["not", "a", "string"]}],
    }
    result = build_snapshot(PatientRecord(PATIENT_ID, {"patient": [patient]}), AT, library(), ClinicalPolicy())
    assert result.snapshot.age is not None and result.snapshot.age.low == 66
    assert result.notes == ()


def test_a_partial_birth_date_gives_an_age_range() -> None:
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1960"}
    result = build_snapshot(PatientRecord(PATIENT_ID, {"patient": [patient]}), AT, library(), ClinicalPolicy())
    assert result.snapshot.age is not None and (result.snapshot.age.low, result.snapshot.age.high) == (65, 66)

"""The snapshot: selection by value set, statuses, times, units, mCODE, malformed input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from service.clinical.policy import ClinicalPolicy
from service.clinical.resource_reader import Reader
from service.clinical.snapshot import SnapshotResult
from service.clinical.snapshot_reader import build_snapshot
from service.fhir.record import PatientRecord
from tests.service.clinical.factories import (
    ALBUMIN,
    AT,
    BACKACHE,
    BONE_METASTASIS,
    CALCIUM_MASS,
    COUGH,
    EX_SMOKER,
    ICD10CM,
    MCODE_PRIMARY,
    MCODE_SECONDARY,
    MRI_WHOLE_SPINE,
    NSCLC,
    PAIN_SCORE,
    PATIENT_ID,
    SNOMED,
    URINARY_RETENTION,
    Resource,
    ago,
    concept,
    condition,
    library,
    observation,
    order,
    procedure,
    record,
    report,
    smoking,
    study,
)


def snap(*resources: Resource, **options: Any) -> SnapshotResult:
    return build_snapshot(record(*resources, **options), AT, library(), ClinicalPolicy())


def test_only_coded_resources_are_selected() -> None:
    result = snap(
        condition(NSCLC),
        condition("38341003"),  # hypertension: in no value set
        observation("8867-4", value=80, unit="/min", effective=ago(1)),  # heart rate
        {"resourceType": "MedicationRequest", "id": "m1"},
    )
    assert [finding.concept.code for finding in result.snapshot.findings] == [NSCLC]
    assert result.snapshot.findings[0].groups >= {"lung-cancer-primary"}
    assert result.snapshot.measurements == ()
    assert result.notes == ()


def test_unselected_resources_are_never_validated() -> None:
    # Invalid, but no rule reads it: no note, no cost.
    result = snap({"resourceType": "Condition", "code": concept("38341003"), "subject": "not a reference"})
    assert result.notes == ()


def test_refuted_and_entered_in_error_conditions_never_count() -> None:
    result = snap(
        condition(NSCLC, verification="refuted"),
        condition(NSCLC, verification="entered-in-error"),
        condition(NSCLC, verification="unconfirmed"),
    )
    assert len(result.snapshot.findings) == 1


def test_resolved_conditions_are_kept_with_their_status() -> None:
    finding = snap(condition(NSCLC, clinical="resolved", abated="2024-01-01")).snapshot.findings[0]
    assert finding.clinical_status == "resolved"
    assert finding.abated is not None
    assert not finding.is_current(AT)


def test_condition_times_onset_recorded_abatement() -> None:
    period = condition(BACKACHE, recorded="2026-05-02")
    period["onsetPeriod"] = {"start": "2026-04-01", "end": "2026-04-10"}
    finding = snap(period).snapshot.findings[0]
    assert finding.onset is not None and finding.recorded is not None
    assert finding.onset.start.date().isoformat() == "2026-04-01"
    assert finding.onset.end.date().isoformat() == "2026-04-10"
    assert finding.first_time == finding.onset


def test_only_final_amended_corrected_observations_count() -> None:
    # Each result alone: the snapshot keeps the latest calcium only.
    counted = [
        status
        for status in ("final", "amended", "corrected", "preliminary", "registered", "cancelled", "entered-in-error")
        if snap(
            observation(CALCIUM_MASS, value=10, unit="mg/dL", effective=ago(1), status=status)
        ).snapshot.measurements
    ]
    assert counted == ["final", "amended", "corrected"]


def test_effective_variants_and_issued_fallback() -> None:
    instant = observation(CALCIUM_MASS, value=10, unit="mg/dL", effectiveInstant="2026-05-31T08:00:00Z")
    period = observation(CALCIUM_MASS, value=10, unit="mg/dL", effectivePeriod={"start": ago(2), "end": ago(1)})
    issued = observation(CALCIUM_MASS, value=10, unit="mg/dL", issued="2026-05-30T08:00:00+01:00")
    timeless = observation(CALCIUM_MASS, value=10, unit="mg/dL")
    # Each result alone: the snapshot keeps the latest calcium only.
    whens = [item.when for lab in (instant, period, issued) for item in snap(lab).snapshot.measurements]
    assert len(whens) == 3
    assert whens[0].start.isoformat() == "2026-05-31T08:00:00+00:00"
    assert whens[1].end - whens[1].start == timedelta(days=1)
    assert whens[2].start.isoformat() == "2026-05-30T08:00:00+01:00"
    result = snap(timeless)
    assert result.snapshot.measurements == ()
    assert result.notes == ("Observation skipped: result without effective time",)


def test_effective_timing_is_read() -> None:
    # Observation.effective[x] is dateTime | Period | Timing | instant (FHIR R4): a Timing's
    # events are the times it was observed.
    lab = observation(CALCIUM_MASS, value=10, unit="mg/dL", effectiveTiming={"event": [ago(2), ago(1)]})
    sign = observation(URINARY_RETENTION, SNOMED, effectiveTiming={"event": [ago(1)]})
    result = snap(lab, sign)
    assert result.notes == ()
    when = result.snapshot.measurements[0].when
    assert (when.start.isoformat(), when.end.isoformat()) == (ago(2), ago(1))
    onset = result.snapshot.findings[0].onset
    assert onset is not None and onset.start.isoformat() == ago(1)


def test_units_reported_missing_and_unknown() -> None:
    no_unit = observation(CALCIUM_MASS, value=12, effective=ago(1))
    odd_unit = observation(CALCIUM_MASS, value=12, unit="kg", effective=ago(1))
    albumin_no_unit = observation(ALBUMIN, value=3.1, effective=ago(1))
    # An albumin is read only to adjust a total calcium: the one without a unit, taken at the same time.
    result = snap(no_unit, albumin_no_unit)
    assert [(item.value, item.unit) for item in result.snapshot.measurements] == [
        (Decimal(12), "mg/dL"),
        (Decimal("3.1"), "g/dL"),
    ]
    assert result.notes == (
        "Observation: calcium result without unit read as mg/dL",
        "Observation: albumin result without unit read as g/dL",
    )
    odd = snap(odd_unit)
    assert odd.snapshot.measurements == ()
    assert odd.notes == ("Observation skipped: calcium unit not recognised",)


def test_unit_text_is_used_when_not_ucum() -> None:
    lab = observation(CALCIUM_MASS, effective=ago(1), valueQuantity={"value": 11.0, "unit": "mg/dl"})
    assert snap(lab).snapshot.measurements[0].unit == "mg/dl"


def test_pain_score_as_integer() -> None:
    score = observation(PAIN_SCORE, effective=ago(1), valueInteger=8)
    assert snap(score).snapshot.measurements[0].value == 8


def test_old_results_are_not_read() -> None:
    horizon = ClinicalPolicy().spinal_pain_window_days
    old = observation(PAIN_SCORE, value=9, unit="{score}", effective=ago(horizon + 1))
    recent = observation(PAIN_SCORE, value=9, unit="{score}", effective=ago(horizon - 1))
    assert len(snap(old, recent).snapshot.measurements) == 1


def test_findings_as_observations_by_code_or_value() -> None:
    by_code = observation(URINARY_RETENTION, SNOMED, effective=ago(1))
    by_value = observation("75325-1", effective=ago(1), valueCodeableConcept=concept(COUGH))
    negated = observation(URINARY_RETENTION, SNOMED, effective=ago(1), valueBoolean=False)
    findings = snap(by_code, by_value, negated).snapshot.findings
    assert [finding.concept.code for finding in findings] == [URINARY_RETENTION, COUGH]
    assert findings[0].onset is not None and findings[0].clinical_status is None


def test_smoking_status_reads_the_answer() -> None:
    status = snap(smoking(EX_SMOKER)).snapshot.smoking[0]
    assert status.answer is not None and status.answer.code == EX_SMOKER
    assert "smoking-status-ever" in status.answer_groups


def test_mcode_profiles_and_body_sites() -> None:
    primary = condition("363346000", profile=MCODE_PRIMARY, body_site="39607008")  # generic code, lung site
    secondary = condition("128462008", profile=MCODE_SECONDARY + "|4.0.0", body_site="421060004")
    findings = snap(primary, secondary).snapshot.findings
    assert [(item.mcode, item.body_sites) for item in findings] == [
        ("primary", frozenset({"lung"})),
        ("secondary", frozenset({"vertebral-column"})),
    ]


def test_imaging_states_and_times() -> None:
    result = snap(
        order(MRI_WHOLE_SPINE, authored=ago(hours=3)),
        order(MRI_WHOLE_SPINE, authored=ago(hours=3), status="completed", occurrenceDateTime=ago(hours=1)),
        order(MRI_WHOLE_SPINE, authored=ago(hours=3), status="revoked"),
        order(MRI_WHOLE_SPINE, authored=ago(hours=3), intent="proposal"),
        study(MRI_WHOLE_SPINE, started=ago(2)),
        study(MRI_WHOLE_SPINE, started=ago(2), status="registered"),
        report(MRI_WHOLE_SPINE, effective=ago(3)),
        report(MRI_WHOLE_SPINE, effective=ago(3), status="cancelled"),
        procedure(MRI_WHOLE_SPINE, performed=ago(4)),
        procedure(MRI_WHOLE_SPINE, performed=ago(4), status="not-done"),
        order("24627-2", authored=ago(1)),  # CT chest
    )
    states = [(event.source.resource_type, event.state) for event in result.snapshot.imaging]
    assert states == [
        ("ServiceRequest", "ordered"),
        ("ServiceRequest", "done"),
        ("ImagingStudy", "done"),
        ("ImagingStudy", "ordered"),
        ("DiagnosticReport", "done"),
        ("Procedure", "done"),
        ("ServiceRequest", "ordered"),
    ]
    assert result.snapshot.imaging[1].when is not None
    assert result.snapshot.imaging[1].when.start.isoformat() == ago(hours=1)


def test_draft_orders_without_authored_on_are_now() -> None:
    draft = order(MRI_WHOLE_SPINE, authored=None, status="draft")
    event = snap(drafts=[draft]).snapshot.imaging[0]
    assert event.draft and event.state == "ordered"
    assert event.when is not None and event.when.start == AT


def test_a_draft_service_request_in_the_record_is_a_draft() -> None:
    event = snap(order(MRI_WHOLE_SPINE, authored=ago(hours=1), status="draft")).snapshot.imaging[0]
    assert event.draft and event.state == "ordered"
    active = snap(order(MRI_WHOLE_SPINE, authored=ago(hours=1))).snapshot.imaging[0]
    assert not active.draft


def test_imaging_older_than_every_window_is_dropped() -> None:
    assert snap(study(MRI_WHOLE_SPINE, started=ago(400))).snapshot.imaging == ()


def test_malformed_resources_are_skipped_with_a_safe_note() -> None:
    secret = "Jane Doe 1970-01-01"
    bad_value = observation(CALCIUM_MASS, effective=ago(1), valueQuantity={"value": secret})
    bad_onset = condition(NSCLC, onsetDateTime=secret)
    bad_extra = condition(NSCLC, **{secret: 1})
    result = snap(bad_value, bad_onset, bad_extra)
    assert result.snapshot.findings == () and result.snapshot.measurements == ()
    assert len(result.notes) == 3
    assert all(secret not in note and "cond-" not in note and "obs-" not in note for note in result.notes)
    assert any(note.startswith("Observation skipped: not valid FHIR R4B (valueQuantity.value") for note in result.notes)


def test_datetime_without_offset_is_read_as_utc_with_a_note() -> None:
    finding = snap(condition(URINARY_RETENTION, onset="2026-05-30T08:00:00")).snapshot.findings
    assert finding[0].onset is not None
    assert finding[0].onset.start.isoformat() == "2026-05-30T08:00:00+00:00"


def test_datetime_without_seconds_or_offset_is_read_as_utc_with_a_note() -> None:
    result = snap(condition(URINARY_RETENTION, onset="2026-05-30T08:15"))
    onset = result.snapshot.findings[0].onset
    assert onset is not None and onset.start.isoformat() == "2026-05-30T08:15:00+00:00"
    assert result.notes == ("Condition: date-time without UTC offset read as UTC",)


def test_note_for_offset_less_time_counts_repeats() -> None:
    result = snap(*(condition(URINARY_RETENTION, onset="2026-05-30T08:00:00") for _ in range(3)))
    assert result.notes == ("Condition: date-time without UTC offset read as UTC (×3)",)


def test_age_from_partial_birth_date() -> None:
    snapshot = snap(birth_date="1986").snapshot
    assert snapshot.age is not None and (snapshot.age.low, snapshot.age.high) == (39, 40)
    assert snap(birth_date=None).snapshot.age is None
    assert snap(birth_date="not a date").snapshot.age is None


def test_patient_extensions_do_not_hide_the_age() -> None:
    # Only birthDate is read, so only birthDate is validated: a broken extension elsewhere
    # in the Patient must not make the age unknown.
    broken = {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1960-01-01", "extension": [{"url": 5}]}
    result = build_snapshot(PatientRecord(PATIENT_ID, {"patient": [broken]}), AT, library(), ClinicalPolicy())
    assert result.snapshot.age is not None and result.snapshot.age.low == 66
    assert result.notes == ()


def test_icd_coded_findings_are_matched_by_system() -> None:
    who = condition("M62.81", "http://hl7.org/fhir/sid/icd-10")  # "shoulder region" in WHO ICD-10
    cm = condition("M62.81", ICD10CM)  # "muscle weakness" in ICD-10-CM
    findings = snap(who, cm).snapshot.findings
    assert [finding.concept.system for finding in findings] == [ICD10CM]


def test_gaps_and_valuesets_are_carried() -> None:
    snapshot = snap(gaps=["labs"]).snapshot
    assert {gap.key for gap in snapshot.gaps} == {"labs"}
    assert "mscc-neuro-signs" in snapshot.valuesets
    assert snapshot.findings_in(("secondary-bone-malignancy",)) == ()
    assert snap(condition(BONE_METASTASIS)).snapshot.findings_in(("secondary-bone-malignancy",))


def test_a_bug_in_the_reader_is_not_unreadable_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only data that is not valid R4B is skipped with a note; an unexpected exception in
    # the reader propagates (a 500, logged), never passes for "unreadable data".
    def broken(self: Reader, resource: dict[str, Any]) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(Reader, "_condition", broken)
    with pytest.raises(KeyError, match="a bug"):
        snap(condition(NSCLC))


def test_a_status_or_id_that_is_not_a_string_is_no_status_not_a_crash() -> None:
    # A list is unhashable: set membership raised TypeError, which once passed for "unreadable data".
    for status in ([], {"code": "final"}, ["final"]):
        lab = observation(CALCIUM_MASS, value=10, unit="mg/dL", effective=ago(1), status=status)
        sign = observation(URINARY_RETENTION, SNOMED, effective=ago(1), status=status)
        result = snap(lab, sign)
        assert result.snapshot.measurements == () and result.snapshot.findings == ()
    odd = {"resourceType": "Patient", "id": [PATIENT_ID], "birthDate": "1960-01-01"}
    assert (
        build_snapshot(PatientRecord(PATIENT_ID, {"patient": [odd]}), AT, library(), ClinicalPolicy()).snapshot.age
        is None
    )

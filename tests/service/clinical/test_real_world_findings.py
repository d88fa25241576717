"""What a resource says, as real EHRs write it: absence, certainty, modifiers, copies, nesting.

docs/clinical/data-quality.md states the policy; each test below is one line of it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clinical.policy import ClinicalPolicy
from service.clinical.recordparts import Exclusion
from service.clinical.snapshot import SnapshotResult
from service.clinical.snapshot_reader import build_snapshot
from service.fhir.integrity import PatientReferences, PatientScope
from tests.references import ENTRIES, SERVER, my_references, references
from tests.service.clinical.factories import (
    AT,
    CALCIUM_MOLAR,
    LOINC,
    MRI_WHOLE_SPINE,
    NSCLC,
    PATIENT_ID,
    SNOMED,
    THORACIC_BACK_PAIN,
    URINARY_RETENTION,
    Resource,
    cards_of,
    concept,
    condition,
    day_ago,
    library,
    observation,
    order,
    record,
    screen,
)

V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ABSENT = concept("2667000", SNOMED)
NEGATIVE = concept("260385009", SNOMED)
LEG_PARESIS = "102568007"


def sign(**extra: Any) -> Resource:
    """Urinary retention observed yesterday, present unless ``extra`` says otherwise."""
    resource = observation(URINARY_RETENTION, SNOMED, effective=day_ago(1), valueBoolean=True)
    resource.update(extra)
    return {key: value for key, value in resource.items() if value is not None}


def snap(
    *resources: Resource, policy: ClinicalPolicy | None = None, references: PatientReferences | None = None
) -> SnapshotResult:
    return build_snapshot(record(*resources, references=references), AT, library(), policy or ClinicalPolicy())


def neuro(result: SnapshotResult) -> list[Any]:
    return list(result.snapshot.findings_in(["mscc-neuro-signs"]))


def r1(*resources: Resource, policy: ClinicalPolicy | None = None) -> list[tuple[str, str]]:
    return cards_of(screen(record(condition(NSCLC), *resources), policy=policy))


# -- absence and certainty -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "absent",
    [
        {"valueBoolean": False},
        {"valueBoolean": None, "valueCodeableConcept": ABSENT},
        {"valueBoolean": None, "valueCodeableConcept": NEGATIVE},
        {"valueBoolean": None, "interpretation": [concept("NEG", V3)]},
        {"valueBoolean": None, "interpretation": [concept("ND", V3)]},
        {"valueBoolean": True, "interpretation": [concept("NEG", V3)]},
        {"valueBoolean": None, "dataAbsentReason": concept("not-performed", "http://example.org/dar")},
    ],
    ids=["boolean-false", "coded-absent", "coded-negative", "interp-neg", "interp-nd", "true-but-neg", "data-absent"],
)
def test_a_sign_recorded_as_absent_or_unknown_never_counts(absent: dict[str, Any]) -> None:
    assert neuro(snap(sign(**absent))) == []
    assert r1(sign(**absent)) == []


def test_a_sign_present_with_a_positive_or_no_interpretation_counts() -> None:
    assert len(neuro(snap(sign(interpretation=[concept("POS", V3)])))) == 1
    assert len(neuro(snap(sign(valueBoolean=None)))) == 1  # the code is the finding
    assert r1(sign()) == [("R1", "critical")]


def test_a_finding_coded_in_the_value_cannot_be_negated_by_its_own_value() -> None:
    # "Symptom" = urinary retention: the value is the finding, so it is present.
    symptom = observation("75325-1", LOINC, effective=day_ago(1), valueCodeableConcept=concept(URINARY_RETENTION))
    assert len(neuro(snap(symptom))) == 1


def test_symptoms_ig_present_and_absent() -> None:
    present = observation("75325-1", LOINC, effective=day_ago(1), valueCodeableConcept=concept(LEG_PARESIS))
    absent = observation("111551-8", LOINC, effective=day_ago(1), valueCodeableConcept=concept(LEG_PARESIS))
    assert r1(present) == [("R1", "critical")]
    assert r1(absent) == []
    assert snap(absent).snapshot.findings == ()


def test_a_qualifier_value_alone_is_no_finding() -> None:
    uncoded = observation("panel", "https://example.org/codes", valueCodeableConcept=NEGATIVE)
    assert snap(uncoded).snapshot.findings == ()


# -- status ----------------------------------------------------------------------------------------


def test_a_preliminary_sign_counts_and_the_card_says_so() -> None:
    preliminary = sign(status="preliminary")
    found = neuro(snap(preliminary))
    assert [item.preliminary for item in found] == [True]
    screening = screen(record(condition(NSCLC), preliminary))
    assert cards_of(screening) == [("R1", "critical")]
    assert "preliminary, not yet signed off" in (screening.cards[0].detail or "")


def test_the_team_may_require_signed_findings() -> None:
    policy = ClinicalPolicy(preliminary_findings_count=False)
    assert neuro(snap(sign(status="preliminary"), policy=policy)) == []
    assert r1(sign(status="preliminary"), policy=policy) == []


def test_a_preliminary_lab_result_still_never_counts() -> None:
    calcium = observation(CALCIUM_MOLAR, value=3.8, unit="mmol/L", effective=day_ago(1), status="preliminary")
    assert snap(calcium).snapshot.measurements == ()


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered", "unknown"])
def test_other_statuses_never_count(status: str) -> None:
    assert neuro(snap(sign(status=status))) == []


# -- modifiers and focus --------------------------------------------------------------------------


def test_an_unknown_modifier_extension_keeps_the_resource_out_with_a_note() -> None:
    modified = sign(modifierExtension=[{"url": "https://example.org/not-present", "valueBoolean": True}])
    result = snap(modified)
    assert neuro(result) == []
    assert "Observation skipped: modifierExtension not understood" in result.notes
    cancer = condition(NSCLC)
    cancer["modifierExtension"] = [{"url": "https://example.org/family-history", "valueBoolean": True}]
    assert snap(cancer).snapshot.findings == ()


def test_a_do_not_perform_order_is_no_imaging() -> None:
    forbidden = order(MRI_WHOLE_SPINE, authored=day_ago(2), doNotPerform=True)
    allowed = order(MRI_WHOLE_SPINE, authored=day_ago(2), doNotPerform=False)
    assert snap(forbidden).snapshot.imaging == ()
    assert len(snap(allowed).snapshot.imaging) == 1
    back_pain = condition(THORACIC_BACK_PAIN, onset=day_ago(5))
    assert cards_of(screen(record(condition(NSCLC), back_pain, forbidden))) == [("R2", "warning")]
    assert cards_of(screen(record(condition(NSCLC), back_pain, allowed))) == []


FOCUS_SKIPPED = "Observation skipped: its focus is not the patient"


@pytest.mark.parametrize(
    ("focus", "counts"),
    [
        ([{"reference": f"Patient/{PATIENT_ID}"}], True),
        ([{"reference": f"{SERVER}/Patient/{PATIENT_ID}/_history/2"}], True),
        ([{"reference": ENTRIES[0].full_url}], True),  # the urn:uuid of the patient's own Bundle entry
        ([{"reference": "Patient/someone-else"}], False),
        ([{"reference": ENTRIES[1].full_url}], False),  # another Patient's entry
        ([{"reference": ENTRIES[2].full_url}], False),  # a Group's entry
        ([{"reference": "urn:uuid:6f1c2a8e-0d4b-4c7e-9a51-3b2f7d9e8c10"}], False),  # no entry: unresolved
        ([{"reference": f"https://other.example/fhir/Patient/{PATIENT_ID}"}], False),  # another server
        ([{"display": "Fetus"}], False),
        ([{"reference": f"Patient/{PATIENT_ID}"}, {"reference": "RelatedPerson/mother"}], False),
    ],
)
def test_a_finding_about_someone_else_is_not_the_patients(focus: list[dict[str, str]], counts: bool) -> None:
    # The request's fhirServer and Bundle entries, as the hook's scope read them.
    result = snap(sign(focus=focus), references=PatientScope(PATIENT_ID, SERVER, ENTRIES).references)
    assert len(neuro(result)) == int(counts)
    assert (FOCUS_SKIPPED in result.notes) is not counts


def test_a_focus_on_another_server_is_not_the_patient_even_with_the_patients_id() -> None:
    # Regression: the focus check once took ".../Patient/{id}" on any server for the patient's.
    elsewhere = sign(focus=[{"reference": f"https://other.example/fhir/Patient/{PATIENT_ID}"}])
    assert neuro(snap(elsewhere)) == []
    assert neuro(snap(elsewhere, references=PatientReferences(SERVER))) == []
    # and without a fhirServer no absolute URL names the patient, as no subject does
    assert neuro(snap(sign(focus=[{"reference": f"{SERVER}/Patient/{PATIENT_ID}"}]))) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # half the time every focus is a reference to the patient: drawn at random, rarely all of them would be
    focus=st.one_of(
        st.lists(my_references, min_size=1, max_size=2),
        st.lists(st.one_of(my_references, references), min_size=1, max_size=3),
    ),
    server=st.sampled_from([SERVER, SERVER + "/", None]),
)
def test_a_focus_names_the_patient_exactly_when_a_subject_would(focus: list[object], server: str | None) -> None:
    hook = PatientReferences(server, ENTRIES)
    # The hook's classification of a resource whose subject is each reference.
    named = [hook.patient_of({"resourceType": "Condition", "id": "c", "subject": item}) for item in focus]
    expected = all(not isinstance(name, Exclusion) and name == PATIENT_ID for name in named)
    assert len(neuro(snap(sign(focus=focus), references=hook))) == int(expected)


# -- copies, versions, nesting -------------------------------------------------------------------


def test_only_the_latest_version_of_a_resource_is_read() -> None:
    first = sign(id="obs-v", meta={"versionId": "1"})
    withdrawn = sign(id="obs-v", status="entered-in-error", meta={"versionId": "2"})
    assert neuro(snap(withdrawn, first)) == []
    assert neuro(snap(first, withdrawn)) == []
    # without version ids, the later lastUpdated wins; it is the present one here
    older = sign(id="obs-u", status="entered-in-error", meta={"lastUpdated": "2026-05-30T10:00:00Z"})
    newer = sign(id="obs-u", meta={"lastUpdated": "2026-05-31T10:00:00+01:00"})
    assert len(neuro(snap(newer, older))) == 1


def test_identical_copies_are_read_once() -> None:
    once = sign(id="obs-copy")
    assert len(neuro(snap(once, copy.deepcopy(once)))) == 1


def test_findings_in_components_are_read_each_with_its_own_value() -> None:
    panel = observation(
        "75325-1",
        LOINC,
        effective=day_ago(1),
        component=[
            {"code": concept(URINARY_RETENTION), "valueCodeableConcept": ABSENT},
            {"code": concept(LEG_PARESIS), "valueBoolean": True},
            {"code": concept("713514005"), "interpretation": [concept("NEG", V3)]},
        ],
    )
    found = neuro(snap(panel))
    assert [item.concept.code for item in found] == [LEG_PARESIS]
    assert r1(panel) == [("R1", "critical")]


def test_a_contained_panel_member_is_read_without_a_reference_of_its_own() -> None:
    member = {key: value for key, value in sign().items() if key != "subject"} | {"id": "m1"}
    panel = observation("75325-1", LOINC, contained=[member], hasMember=[{"reference": "#m1"}])
    found = neuro(snap(panel))
    assert len(found) == 1
    assert found[0].source.reference is None  # a card cites it; a suggestion never references "#m1"
    screening = screen(record(condition(NSCLC), panel))
    assert cards_of(screening) == [("R1", "critical")]
    suggestion = (screening.cards[0].suggestions or [None])[0]
    assert suggestion is not None
    reasons = suggestion.actions[0].resource.get("reasonReference") or []  # type: ignore[union-attr]
    assert all("#" not in reason["reference"] for reason in reasons)

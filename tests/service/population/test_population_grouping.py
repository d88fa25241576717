"""Which patient a resource belongs to (:func:`patient_of`): the reference forms an export uses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.population.grouping import patient_of

ids = st.from_regex(r"\A[A-Za-z0-9\-.]{1,64}\Z")
uuids = st.uuids().map(str)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"resourceType": "Patient", "id": "p1"}, "p1"),
        ({"resourceType": "Patient"}, None),
        ({"resourceType": "Patient", "id": "has space"}, None),
        ({"resourceType": "Condition", "subject": {"reference": "Patient/p1"}}, "p1"),
        ({"resourceType": "Condition", "subject": {"reference": "https://ehr.example.org/fhir/Patient/p1"}}, "p1"),
        ({"resourceType": "Condition", "subject": {"reference": "Patient/p1/_history/3"}}, "p1"),
        (
            {"resourceType": "Observation", "subject": {"reference": "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"}},
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ),
        ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p2"}}, "p2"),
        # a Group subject: the patient element is tried next
        (
            {"resourceType": "Observation", "subject": {"reference": "Group/g"}, "patient": {"reference": "Patient/p"}},
            "p",
        ),
        ({"resourceType": "Observation", "subject": {"reference": "Group/g"}}, None),
        ({"resourceType": "Observation", "subject": {"identifier": {"value": "MRN1"}}}, None),
        ({"resourceType": "Observation", "subject": "Patient/p1"}, None),
        ({"resourceType": "Observation", "subject": {"reference": "Patient/"}}, None),
        ({"resourceType": "Observation", "subject": {"reference": "urn:uuid:not-a-uuid"}}, None),
        ({"resourceType": "Practitioner", "id": "doc"}, None),
        ({"resourceType": "Observation"}, None),
    ],
)
def test_patient_of(resource: dict[str, Any], expected: str | None) -> None:
    assert patient_of(resource) == expected


@given(
    patient=ids,
    prefix=st.sampled_from(["", "https://ehr.example.org/fhir/", "http://h:8080/base/"]),
    history=st.one_of(st.just(""), st.integers(1, 99).map(lambda n: f"/_history/{n}")),
    element=st.sampled_from(["subject", "patient"]),
)
def test_every_patient_reference_form_names_its_patient(patient: str, prefix: str, history: str, element: str) -> None:
    resource = {"resourceType": "Observation", element: {"reference": f"{prefix}Patient/{patient}{history}"}}
    assert patient_of(resource) == patient


@given(uuid=uuids)
def test_a_urn_uuid_names_the_patient_with_that_id(uuid: str) -> None:
    assert patient_of({"resourceType": "Condition", "subject": {"reference": f"urn:uuid:{uuid}"}}) == uuid


@given(kind=st.sampled_from(["Group", "Device", "Location", "Practitioner"]), target=ids)
def test_a_reference_to_anything_but_a_patient_names_none(kind: str, target: str) -> None:
    assert patient_of({"resourceType": "Observation", "subject": {"reference": f"{kind}/{target}"}}) is None

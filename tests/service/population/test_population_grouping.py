"""Whose resource a line of an export is: the hook's own reading, so both paths agree on every reference.

The population groups a resource under patient P exactly when the hook, with P in context,
would keep it (:class:`~service.fhir.integrity.PatientScope`); when the population finds no
patient, the hook keeps it for no one and gives the same reason. Checked over the shapes a
reference takes: relative (with or without a version), absolute under the export's server
or another one, urn:uuid, contained, another patient, a Group or other non-patient, an
identifier or display only, none at all, and the ``subject``/``patient`` elements alike.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from service.clinical.recordparts import Exclusion
from service.fhir.integrity import PatientReferences, PatientScope
from service.population.export import LineProblem, PatientLine, SkippedLine, classify_line

SERVER = "https://ehr.example.org/fhir"
ME = "p1"
ids = st.from_regex(r"\A[A-Za-z0-9\-.]{1,64}\Z")

#: the population's reason for each of the hook's exclusions
REASON = {
    LineProblem.NO_PATIENT: Exclusion.NO_PATIENT,
    LineProblem.UNRESOLVED: Exclusion.UNRESOLVED,
    LineProblem.NOT_A_PATIENT: Exclusion.ANOTHER_PATIENT,
}


targets = st.sampled_from([ME, "p2", "a.b-3"])
kinds = st.sampled_from(["Patient", "Patient", "Group", "Device", "Location"])
histories = st.sampled_from(["", "/_history/3"])
#: the text of a reference, in every shape an EHR or an exporter writes
reference_texts = st.one_of(
    st.builds(lambda k, t, h: f"{k}/{t}{h}", kinds, targets, histories),
    st.builds(lambda k, t, h: f"{SERVER}/{k}/{t}{h}", kinds, targets, histories),
    st.builds(lambda k, t: f"HTTPS://EHR.example.org:443/fhir/{k}/{t}", kinds, targets),
    st.builds(lambda k, t: f"https://other.example.org/fhir/{k}/{t}", kinds, targets),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    targets.map(lambda t: f"#{t}"),
    kinds.map(lambda k: f"{k}/"),
    st.just(""),
)
references = st.one_of(
    reference_texts.map(lambda text: {"reference": text}),
    reference_texts.map(lambda text: {"reference": text, "display": "Jane"}),
    st.sampled_from([{"identifier": {"value": "MRN1"}}, {"display": "Jane"}, {}, None]),
    reference_texts,
)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Condition", "Observation", "ServiceRequest", "Procedure", "ImagingStudy"]))
    resource: dict[str, Any] = {"resourceType": kind, "id": "r"}
    for element in draw(st.sampled_from([(), ("subject",), ("patient",), ("subject", "patient")])):
        resource[element] = draw(references)
    return resource


@given(resource=resources(), server=st.sampled_from([SERVER, SERVER + "/", None]), context=st.sampled_from([ME, "p2"]))
def test_the_population_groups_a_resource_where_the_hook_keeps_it(
    resource: dict[str, Any], server: str | None, context: str
) -> None:
    line = classify_line(orjson.dumps(resource), references=PatientReferences(server))
    hook = PatientScope(context, server).exclusion(resource)
    if isinstance(line, PatientLine):
        assert (hook is None) == (line.patient_id == context)
        if hook is not None:
            assert hook is Exclusion.ANOTHER_PATIENT
    else:
        assert isinstance(line, SkippedLine)
        assert hook is REASON[line.problem]


@given(patient=ids, server=st.sampled_from([SERVER, None]))
def test_a_patient_is_its_own_on_both_paths(patient: str, server: str | None) -> None:
    resource = {"resourceType": "Patient", "id": patient}
    line = classify_line(orjson.dumps(resource), references=PatientReferences(server))
    assert isinstance(line, PatientLine) and line.patient_id == patient
    assert PatientScope(patient, server).exclusion(resource) is None
    assert PatientScope(patient + "x", server).exclusion(resource) is Exclusion.ANOTHER_PATIENT


@given(patient=ids, history=st.sampled_from(["", "/_history/1"]), element=st.sampled_from(["subject", "patient"]))
def test_every_patient_reference_form_names_its_patient(patient: str, history: str, element: str) -> None:
    for text in (f"Patient/{patient}{history}", f"{SERVER}/Patient/{patient}{history}"):
        line = classify_line(
            orjson.dumps({"resourceType": "Observation", element: {"reference": text}}),
            references=PatientReferences(SERVER),
        )
        assert isinstance(line, PatientLine) and line.patient_id == patient, text

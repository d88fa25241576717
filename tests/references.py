"""FHIR References in every shape an EHR, an exporter or a Bundle writes, as hypothesis strategies.

Whose data a reference names is read in one place (:class:`~service.fhir.integrity.PatientReferences`);
the tests that check that each reader of references (the hook's scope, the population's grouping, the
snapshot's ``Observation.focus``) agrees with it draw their references from here: relative (with or
without a version), absolute under the server or another one, ``urn:uuid`` naming a Bundle entry (this
patient, another, a Group) or nothing, contained, a Patient or a non-patient type, an identifier or display
only, none at all, and text that is no reference.
"""

from __future__ import annotations

from hypothesis import strategies as st

from service.fhir.bundle import Entry

__all__ = ["ENTRIES", "ME", "SERVER", "my_references", "reference_texts", "references"]

SERVER = "https://ehr.example.org/fhir"
#: the context patient (tests.service.clinical.factories.PATIENT_ID)
ME = "p1"
#: Bundle entries a reference may name by ``fullUrl``: this patient, another patient, a Group with my id
ENTRIES = (
    Entry({"resourceType": "Patient", "id": ME}, "urn:uuid:0b4e5c1a-9d1e-4f60-8a2d-5e7c9b1f0a42"),
    Entry({"resourceType": "Patient", "id": "p2"}, "urn:uuid:1c5f6d2b-ae2f-4071-9b3e-6f8dac20b153"),
    Entry({"resourceType": "Group", "id": ME}, "urn:uuid:2d607e3c-bf30-4182-ac4f-7a9ebd31c264"),
)

_targets = st.sampled_from([ME, "p2", "a.b-3"])
_kinds = st.sampled_from(["Patient", "Patient", "Group", "Device", "Location", "RelatedPerson"])
_histories = st.sampled_from(["", "/_history/3"])
#: near misses: each looks like a reference to the patient and is none the hook accepts
_near_misses = st.sampled_from(
    [
        f"patient/{ME}",
        f"Patient/{ME}/",
        f"Patient//{ME}",
        f"x/Patient/{ME}",
        f" Patient/{ME}",
        f"Patient/{ME}&_include=*",
        f"{SERVER}/Patient/{ME}?_format=json",
        f"{SERVER}/Patient/{ME}#x",
        f"{SERVER}/other/Patient/{ME}",
        f"{SERVER}x/Patient/{ME}",
    ]
)
#: the text of a reference
reference_texts = st.one_of(
    st.builds(lambda k, t, h: f"{k}/{t}{h}", _kinds, _targets, _histories),
    st.builds(lambda k, t, h: f"{SERVER}/{k}/{t}{h}", _kinds, _targets, _histories),
    st.builds(lambda k, t: f"HTTPS://EHR.example.org:443/fhir/{k}/{t}", _kinds, _targets),
    st.builds(lambda k, t, h: f"https://other.example.org/fhir/{k}/{t}{h}", _kinds, _targets, _histories),
    st.sampled_from([entry.full_url for entry in ENTRIES]),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    _targets.map(lambda t: f"#{t}"),
    _kinds.map(lambda k: f"{k}/"),
    _near_misses,
    st.text(max_size=20),
    st.just(""),
)
#: References that name the patient (the absolute ones only under SERVER, the urn:uuid only with ENTRIES):
#: drawn from ``references`` alone they are rare
my_references = st.sampled_from(
    [
        f"Patient/{ME}",
        f"Patient/{ME}/_history/3",
        f"{SERVER}/Patient/{ME}",
        f"HTTPS://EHR.example.org:443/fhir/Patient/{ME}/_history/1",
        ENTRIES[0].full_url,
    ]
).map(lambda text: {"reference": text})
#: a Reference element as JSON, or something in its place that is none
references = st.one_of(
    reference_texts.map(lambda text: {"reference": text}),
    reference_texts.map(lambda text: {"reference": text, "display": "Jane"}),
    st.sampled_from([{"identifier": {"value": "MRN1"}}, {"display": "Jane"}, {}, None]),
    reference_texts,
)

"""Whose resource is it: service.fhir.integrity, and the gatherer that applies it on both paths."""

from __future__ import annotations

from typing import Any

import pytest

from cds_hooks.contexts import parse_context
from cds_hooks.errors import PreconditionFailed
from cds_hooks.models import CDSRequest
from service.cli.fhir_access import fhir_authorization
from service.clinical.recordparts import Excluded, Exclusion
from service.fhir.bundle import Entry, NotFhir, prefetch_entries
from service.fhir.gather import PatientDataGatherer
from service.fhir.integrity import PatientScope
from service.fhir.record import PatientRecord, Resource
from tests.bundles import searchset

pytestmark = pytest.mark.anyio

SERVER = "https://ehr.example.org/fhir"
ME = "p-1"


def condition(subject: Any = None, *, element: str = "subject") -> Resource:
    resource: Resource = {"resourceType": "Condition", "id": "c"}
    if subject is not None:
        resource[element] = subject
    return resource


@pytest.mark.parametrize(
    "reference",
    [
        f"Patient/{ME}",
        f"Patient/{ME}/_history/3",
        f"{SERVER}/Patient/{ME}",
        f"{SERVER}/Patient/{ME}/_history/3",
        f"HTTPS://EHR.example.org:443/fhir/Patient/{ME}",
    ],
)
def test_references_to_this_patient_count(reference: str) -> None:
    scope = PatientScope(ME, SERVER + "/")
    assert scope.exclusion(condition({"reference": reference})) is None
    assert scope.exclusion(condition({"reference": reference}, element="patient")) is None


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ({"reference": "Patient/p-2"}, Exclusion.ANOTHER_PATIENT),
        ({"reference": f"Patient/{ME}x"}, Exclusion.ANOTHER_PATIENT),
        ({"reference": "Patient/P-1"}, Exclusion.ANOTHER_PATIENT),  # FHIR ids are case-sensitive
        ({"reference": f"Group/{ME}"}, Exclusion.ANOTHER_PATIENT),
        ({"reference": f"{SERVER}/Patient/p-2"}, Exclusion.ANOTHER_PATIENT),
        ({"reference": f"https://other.example.net/fhir/Patient/{ME}"}, Exclusion.UNRESOLVED),
        ({"reference": f"http://ehr.example.org/fhir/Patient/{ME}"}, Exclusion.UNRESOLVED),
        ({"reference": f"{SERVER}/Patient/{ME}?_format=json"}, Exclusion.UNRESOLVED),
        ({"reference": "urn:uuid:6f1c2a8e-0d4b-4c7e-9a51-3b2f7d9e8c10"}, Exclusion.UNRESOLVED),
        ({"reference": f"#{ME}"}, Exclusion.UNRESOLVED),
        ({"reference": f"Patient/{ME}&_include=*"}, Exclusion.UNRESOLVED),
        ({"identifier": {"value": ME}}, Exclusion.UNRESOLVED),
        ({"display": ME}, Exclusion.UNRESOLVED),
        ({}, Exclusion.NO_PATIENT),
        ("Patient/p-1", Exclusion.UNRESOLVED),
    ],
)
def test_other_references_are_not_this_patients(subject: Any, reason: Exclusion) -> None:
    assert PatientScope(ME, SERVER).exclusion(condition(subject)) is reason


def test_a_resource_about_no_one_and_a_patient_with_another_id_are_not_used() -> None:
    scope = PatientScope(ME, None)
    assert scope.exclusion(condition()) is Exclusion.NO_PATIENT
    assert scope.exclusion({"resourceType": "Patient", "id": "p-2"}) is Exclusion.ANOTHER_PATIENT
    assert scope.exclusion({"resourceType": "Patient"}) is Exclusion.ANOTHER_PATIENT
    assert scope.exclusion({"resourceType": "Patient", "id": ME}) is None
    # without a fhirServer no absolute URL can be tied to the patient
    assert scope.exclusion(condition({"reference": f"{SERVER}/Patient/{ME}"})) is Exclusion.UNRESOLVED


def test_urn_uuid_references_resolve_through_the_bundles_full_urls() -> None:
    mine, theirs = "urn:uuid:0b4e5c1a-9d1e-4f60-8a2d-5e7c9b1f0a42", "urn:uuid:1c5f6d2b-ae2f-4071-9b3e-6f8dac20b153"
    entries = [
        Entry({"resourceType": "Patient", "id": ME}, mine),
        Entry({"resourceType": "Patient", "id": "p-2"}, theirs),
        Entry({"resourceType": "Group", "id": "g"}, "urn:uuid:2d607e3c-bf30-4182-ac4f-7a9ebd31c264"),
        # a "fullUrl" spelt like a relative reference must not re-point Patient/p-2
        Entry({"resourceType": "Patient", "id": ME}, "Patient/p-2"),
    ]
    scope = PatientScope(ME, SERVER, entries)
    assert scope.exclusion(condition({"reference": mine})) is None
    assert scope.exclusion(condition({"reference": theirs})) is Exclusion.ANOTHER_PATIENT
    assert scope.exclusion(condition({"reference": entries[2].full_url})) is Exclusion.ANOTHER_PATIENT
    assert scope.exclusion(condition({"reference": "Patient/p-2"})) is Exclusion.ANOTHER_PATIENT


def test_keep_own_counts_by_key_and_reason() -> None:
    resources = [
        condition({"reference": f"Patient/{ME}"}),
        condition({"reference": "Patient/p-2"}),
        condition({"reference": "Patient/p-3"}),
        condition(),
    ]
    own, dropped = PatientScope(ME, SERVER).keep_own("conditions", resources)
    assert own == resources[:1]
    assert dropped == [
        Excluded("conditions", Exclusion.ANOTHER_PATIENT, 2),
        Excluded("conditions", Exclusion.NO_PATIENT, 1),
    ]


# -- structure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "a JSON array where a Bundle of Condition resources was expected"),
        ("none", "a string where"),
        (True, "a boolean where"),
        (3, "a number where"),
        ({"id": "x"}, "an object without a valid resourceType where"),
        ({"resourceType": "Patient", "id": ME}, "a Patient where a Bundle of Condition resources"),
        ({"resourceType": "Bundle", "entry": 3}, "Bundle.entry is a number, not a list"),
        ({"resourceType": "Bundle", "entry": True}, "Bundle.entry is a boolean, not a list"),
        ({"resourceType": "Bundle", "entry": [1]}, "a Bundle entry is a number, not an object"),
        ({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}, "a Bundle entry has no resource"),
        ({"resourceType": "Bundle", "entry": [{"resource": {"id": "c"}}]}, "resource has no resourceType"),
        ({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}, "a Bundle of Patient"),
        ({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "<script>"}}]}, "a Bundle of unnamed"),
    ],
)
def test_prefetch_values_that_are_not_fhir_of_the_expected_type_are_refused(value: Any, message: str) -> None:
    with pytest.raises(NotFhir, match=message.replace("(", r"\(").replace(")", r"\)")):
        prefetch_entries(value, "Condition")


def test_prefetch_values_of_the_expected_shape_are_read() -> None:
    own = condition({"reference": f"Patient/{ME}"})
    assert prefetch_entries(own, "Condition") == [Entry(own)]
    assert prefetch_entries(searchset(), "Condition") == []
    assert prefetch_entries({"resourceType": "Bundle"}, "Condition") == []
    outcome = {"resourceType": "OperationOutcome"}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": outcome}, {"fullUrl": "urn:uuid:x", "resource": own}]}
    assert prefetch_entries(bundle, "Condition") == [Entry(own, "urn:uuid:x")]


# -- the gatherer, on both paths ---------------------------------------------------------

TEMPLATES = {"patient": "Patient/{{context.patientId}}", "conditions": "Condition?patient={{context.patientId}}"}
PATIENT = {"resourceType": "Patient", "id": ME}
MINE = condition({"reference": f"Patient/{ME}"})
THEIRS = condition({"reference": "Patient/p-2"})


class Server:
    """A FHIR server that answers every query with ``answer``."""

    def __init__(self, answer: dict[str, list[Resource]]) -> None:
        self.answer = answer
        self.queries: list[str] = []

    async def fetch(self, base_url: str, query: str, access_token: str | None) -> list[Resource]:
        self.queries.append(query)
        return self.answer[query.partition("?")[0].split("/")[0]]


async def gather(prefetch: dict[str, Any], server: Server | None = None) -> PatientRecord:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "8e2f9d3c-4a1b-4c5d-9e6f-7a8b9c0d1e2f",
        "context": {"userId": "Practitioner/u", "patientId": ME},
        "prefetch": prefetch,
    }
    if server is not None:
        body |= {"fhirServer": SERVER, "fhirAuthorization": fhir_authorization("t0k3n")}
    request = CDSRequest.model_validate(body)
    gatherer = PatientDataGatherer(TEMPLATES, frozenset(TEMPLATES), server, parts={}, max_entries=100)
    return await gatherer.gather(request, parse_context(request.hook, request.context))


async def test_other_patients_resources_are_dropped_and_counted() -> None:
    record = await gather(
        {"patient": searchset(PATIENT, {**PATIENT, "id": "p-2"}), "conditions": searchset(MINE, THEIRS)}
    )
    assert record.resources == {"patient": [PATIENT], "conditions": [MINE]}
    assert record.excluded == [
        Excluded("patient", Exclusion.ANOTHER_PATIENT, 1),
        Excluded("conditions", Exclusion.ANOTHER_PATIENT, 1),
    ]


@pytest.mark.parametrize(
    "prefetch",
    [
        {"patient": PATIENT, "conditions": searchset(THEIRS)},
        {"patient": {**PATIENT, "id": "p-2"}, "conditions": searchset(MINE)},
        {"patient": PATIENT, "conditions": [1, 2]},
        {"patient": PATIENT, "conditions": {"resourceType": "Bundle", "entry": True}},
        {"patient": PATIENT, "conditions": searchset(PATIENT)},
    ],
)
async def test_an_unreadable_required_key_is_412_naming_it(prefetch: dict[str, Any]) -> None:
    with pytest.raises(PreconditionFailed) as raised:
        await gather(prefetch)
    (detail,) = raised.value.details
    assert detail.startswith(("prefetch key 'conditions': the prefetch value", "prefetch key 'patient': the prefetch"))
    assert detail.endswith("and no fhirServer to query")
    assert "p-2" not in detail


async def test_an_unreadable_key_is_fetched_and_the_servers_answer_is_filtered_too() -> None:
    server = Server({"Patient": [PATIENT], "Condition": [MINE, THEIRS]})
    record = await gather({"patient": {**PATIENT, "id": "p-2"}, "conditions": "garbage"}, server)
    assert sorted(server.queries) == [f"Condition?patient={ME}", f"Patient/{ME}"]
    assert record.resources == {"patient": [PATIENT], "conditions": [MINE]}
    assert record.fetched == {"patient": 1, "conditions": 2}
    assert Excluded("conditions", Exclusion.ANOTHER_PATIENT, 1) in record.excluded


async def test_a_server_sending_only_other_patients_data_is_a_gap() -> None:
    server = Server({"Patient": [PATIENT], "Condition": [THEIRS]})
    with pytest.raises(PreconditionFailed, match="Required FHIR data"):
        await gather({"patient": PATIENT}, server)


def test_the_record_never_offers_another_patients_patient() -> None:
    record = PatientRecord(patient_id=ME, resources={"patient": [{**PATIENT, "id": "p-2"}]})
    assert record.patient is None


async def test_the_record_carries_the_reading_that_kept_its_resources() -> None:
    # The snapshot reads Observation.focus by it: one reading of references per hook call.
    mine, theirs = "urn:uuid:0b4e5c1a-9d1e-4f60-8a2d-5e7c9b1f0a42", "urn:uuid:1c5f6d2b-ae2f-4071-9b3e-6f8dac20b153"
    patients = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": mine, "resource": PATIENT}, {"fullUrl": theirs, "resource": {**PATIENT, "id": "p-2"}}],
    }
    record = await gather({"patient": patients, "conditions": searchset(MINE)}, Server({}))
    assert record.references is not None
    elsewhere = f"https://other.example.net/fhir/Patient/{ME}"
    references = (mine, theirs, f"{SERVER}/Patient/{ME}", elsewhere)
    names = [record.references.names({"reference": reference}, ME) for reference in references]
    assert names == [True, False, True, False]

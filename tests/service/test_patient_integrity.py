"""Through HTTP: another patient's data never changes this patient's cards (docs/clinical/patient-integrity.md).

The property: take a golden scenario and add resources of other people (any type, taken from
the other scenarios) to any prefetch key, with a subject in any form that is not this patient's
(another Patient, a Group, an absolute URL elsewhere, an unresolved urn:uuid, an identifier only,
no subject at all, an id that merely starts like this patient's). The cards keep the rule and
indicator the scenario expects, cite nothing of the additions, and say what was not used; the
only exception is a required key left with nothing of this patient's: then 412 naming it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.prefetch import PREFETCH_KEYS, REQUIRED_KEYS, build_prefetch_templates
from service.scenarios import Scenario
from service.settings import DEFAULT_PROFILES_DIR, Settings
from service.store.settings import StoreSettings
from tests.inprocess import SettableClock, serve_app
from tests.scenarios import card_multiset, expected_multiset, load_scenarios, prefetched_resources
from tests.servicepaths import service_path

SERVER = "https://ehr.example.org/fhir"
SCENARIOS = [
    scenario
    for scenario in load_scenarios()
    if scenario.sandbox
    and scenario.expected_status == 200
    and scenario.name[:2].isdigit()
    and len(scenario.name.partition("-")[0]) == 2
]
#: Resources of every type the scenarios hold, to be given to someone else.
DONORS = [resource for scenario in SCENARIOS for resource in prefetched_resources(scenario)]
#: The resource type each key's template asks for.
KEY_TYPES = {
    key: template.partition("?")[0].split("/")[0]
    for key, template in build_prefetch_templates(lambda _valueset: ()).items()
}


def not_this_patient(patient_id: str) -> st.SearchStrategy[dict[str, Any] | None]:
    """A ``subject`` that is not ``patient_id``'s, in every form a record may carry (None: absent)."""
    return st.sampled_from(
        [
            {"reference": "Patient/hx-other"},
            {"reference": f"Patient/{patient_id}x"},
            {"reference": f"Patient/{patient_id.upper()}"},
            {"reference": f"Group/{patient_id}"},
            {"reference": f"{SERVER}/Patient/hx-other"},
            {"reference": f"https://other-ehr.example.net/fhir/Patient/{patient_id}"},
            {"reference": f"{SERVER}/Patient/{patient_id}?x=1"},
            {"reference": "urn:uuid:0b4e5c1a-9d1e-4f60-8a2d-5e7c9b1f0a42"},
            {"reference": f"#{patient_id}"},
            {"identifier": {"system": "urn:oid:2.16.840.1.113883.19.5", "value": patient_id}},
            {"display": patient_id},
            None,
        ]
    )


@st.composite
def contaminated(draw: st.DrawFn) -> tuple[Scenario, dict[str, Any], str, bool]:
    """A scenario's request with other people's resources added to one prefetch key."""
    scenario = draw(st.sampled_from(SCENARIOS))
    request = copy.deepcopy(scenario.request)
    patient_id = scenario.patient_id
    key = draw(st.sampled_from(PREFETCH_KEYS))
    additions = []
    for index, donor in enumerate(draw(st.lists(st.sampled_from(DONORS), min_size=1, max_size=4))):
        resource = copy.deepcopy(donor)
        resource["id"] = f"hx-foreign-{index}"
        if resource["resourceType"] == "Patient":
            resource["id"] = draw(st.sampled_from(["hx-other", f"{patient_id}x", patient_id.upper()]))
        else:
            resource.pop("subject", None)
            resource.pop("patient", None)
            subject = draw(not_this_patient(patient_id))
            if subject is not None:
                resource[draw(st.sampled_from(["subject", "patient"]))] = subject
        additions.append(resource)
    value = request["prefetch"][key]
    if not isinstance(value, dict):  # a null prefetch (no data): the key then holds only the additions
        value = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    elif value.get("resourceType") != "Bundle":
        value = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": value}]}
    value.setdefault("entry", []).extend({"resource": resource} for resource in additions)
    request["prefetch"][key] = value
    # Unless the key then holds no resource of its type at all (a Bundle of the wrong type:
    # unreadable, a gap), the additions were read and dropped, and every card says so.
    dropped = own_count(scenario, key) > 0 or any(item["resourceType"] == KEY_TYPES[key] for item in additions)
    return scenario, request, key, dropped


class Client:
    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient, clock: SettableClock) -> None:
        self._portal = portal
        self._client = client
        self.clock = clock

    def post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        return self._portal.call(lambda: self._client.post(url, json=body))


@pytest.fixture
def client(store_settings: StoreSettings, clean_mscc_environment: None) -> Iterator[Client]:
    clock = SettableClock()
    app = create_app(Settings(profiles_dir=DEFAULT_PROFILES_DIR, store=store_settings), clock=clock)
    with start_blocking_portal() as portal:
        stack = AsyncExitStack()
        async_client = portal.call(stack.enter_async_context, serve_app(app))
        try:
            yield Client(portal, async_client, clock)
        finally:
            portal.call(stack.aclose)


def own_count(scenario: Scenario, key: str) -> int:
    value = scenario.prefetch.get(key)
    if not isinstance(value, dict):
        return 0
    if value.get("resourceType") != "Bundle":
        return int(value.get("resourceType") == KEY_TYPES[key])
    return sum(1 for entry in value.get("entry") or () if entry["resource"]["resourceType"] == KEY_TYPES[key])


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=contaminated())
def test_another_patients_data_never_changes_this_patients_cards(
    client: Client, case: tuple[Scenario, dict[str, Any], str, bool]
) -> None:
    scenario, request, key, dropped = case
    client.clock.now = scenario.reference_time
    response = client.post(service_path(request["hook"]), request)
    if key in REQUIRED_KEYS and own_count(scenario, key) == 0:
        assert response.status_code == 412, response.text
        assert f"prefetch key {key!r}" in response.text
        return
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert card_multiset(cards) == expected_multiset(scenario), scenario.name
    assert "hx-foreign" not in json.dumps(cards) and "hx-other" not in json.dumps(cards)
    for card in cards if dropped else ():
        assert "Not used: " in card["detail"], (key, card["detail"][-600:])


#: R1 from limb weakness recorded as an examination Observation (the findings key)
NEURO_OBSERVATION = next(scenario for scenario in SCENARIOS if scenario.name.startswith("04-"))
PATIENT_FULL_URL = "urn:uuid:3e718f4d-c041-4293-bd5a-8baf0e42d375"


@pytest.mark.parametrize(
    ("focus", "r1"),
    [
        (PATIENT_FULL_URL, True),
        (f"{SERVER}/Patient/s04-patient/_history/2", True),
        ("https://other.example.net/fhir/Patient/s04-patient", False),
        ("urn:uuid:4f8290e5-d152-4304-ae6b-9cb01f53e486", False),
    ],
)
def test_a_findings_focus_is_read_as_the_request_reads_a_subject(client: Client, focus: str, r1: bool) -> None:
    # The Patient arrives as a Bundle entry with a urn:uuid fullUrl; the sign's focus names the
    # patient in the request's own terms, or on another server, or by a urn:uuid nothing resolves.
    request = copy.deepcopy(NEURO_OBSERVATION.request)
    request["fhirServer"] = SERVER
    patient = request["prefetch"]["patient"]
    request["prefetch"]["patient"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": PATIENT_FULL_URL, "resource": patient}],
    }
    (entry,) = request["prefetch"]["findings"]["entry"]
    entry["resource"]["focus"] = [{"reference": focus}]
    client.clock.now = NEURO_OBSERVATION.reference_time
    response = client.post(service_path(request["hook"]), request)
    assert response.status_code == 200, response.text
    cards = card_multiset(response.json()["cards"])
    assert (cards == expected_multiset(NEURO_OBSERVATION)) is r1
    assert (("R1", "critical") in cards) is r1

"""Through HTTP: arbitrary or malformed prefetch entries never yield a 5xx (issue 3 property).

The engine-level property (tests/service/clinical/test_properties.py) proves the screener
never raises; this one proves the whole request path — body caps, wire models, prefetch
classification, snapshot, cards, audit — answers every such request with 200 or a 4xx.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_hooks.models import CDSResponse
from service.app import create_app
from service.prefetch import PREFETCH_KEYS, REQUIRED_KEYS
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.inprocess import PortalClient, SettableClock, serve_app_in_portal
from tests.service.clinical.test_properties import json_values, malformed, wild_labs
from tests.servicepaths import service_path

SERVICE = service_path()


@pytest.fixture
def client(store_settings: StoreSettings) -> Iterator[PortalClient]:
    # One app for all examples: its lifespan (store, FHIR client) runs once.
    with serve_app_in_portal(create_app(Settings(store=store_settings), clock=SettableClock())) as portal_client:
        yield portal_client


entries = st.lists(
    st.one_of(malformed(), wild_labs(), st.builds(lambda resource: {"resource": resource}, json_values)),
    max_size=6,
)


def _request(key: str, items: list[Any], wrap: bool) -> dict[str, Any]:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": item} for item in items]}
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/fz-1", "patientId": "fz-patient"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "fz-patient", "birthDate": "1950-02-03"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
            key: bundle if wrap else (items[0] if items else None),
        },
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(PREFETCH_KEYS), entries, st.booleans())
def test_malformed_prefetch_never_gets_a_5xx(client: PortalClient, key: str, items: list[Any], wrap: bool) -> None:
    body = _request(key, items, wrap)
    try:
        json.dumps(body, allow_nan=False)
    except ValueError:
        assume(False)  # infinity and NaN have no JSON form: no client can send them
    response = client.post(SERVICE, body)
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        CDSResponse.model_validate(response.json())
    else:
        assert response.json()["resourceType"] == "OperationOutcome"


#: Prefetch values that are not FHIR of the type a template asks for (issue 10, item 5).
NOT_FHIR = st.one_of(
    json_values.filter(lambda value: not isinstance(value, dict) and value is not None),
    st.builds(lambda entry: {"resourceType": "Bundle", "type": "searchset", "entry": entry}, json_values).filter(
        lambda bundle: bundle["entry"] is not None and not isinstance(bundle["entry"], list)
    ),
    st.lists(st.one_of(json_values, st.just({"fullUrl": "urn:uuid:x"}), st.just({"resource": {"id": "x"}})), min_size=1)
    .filter(
        lambda entries: any(
            not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict) for entry in entries
        )
    )
    .map(lambda entries: {"resourceType": "Bundle", "type": "searchset", "entry": entries}),
    st.just({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "fz-other"}}]}),
    st.just({"resourceType": "Practitioner", "id": "fz-1"}),
    st.just({"id": "no-resource-type"}),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(PREFETCH_KEYS), NOT_FHIR)
def test_structure_that_is_not_fhir_is_never_nothing_found(client: PortalClient, key: str, value: Any) -> None:
    body = _request(key, [], wrap=True)
    body["prefetch"][key] = value
    try:
        json.dumps(body, allow_nan=False)
    except ValueError:
        assume(False)
    response = client.post(SERVICE, body)
    if key in REQUIRED_KEYS:
        # never 200 as if screened: 412 naming the key (no token to fetch it with)
        assert response.status_code == 412, response.text
        # "is a JSON array …", or "holds only resources that are not this patient's" (another Patient)
        assert f"prefetch key {key!r}: the prefetch value " in response.text
    else:
        assert response.status_code == 200, response.text
        CDSResponse.model_validate(response.json())

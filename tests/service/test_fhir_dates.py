"""Every FHIR-valid date, dateTime and instant is read, on the prefetch path and on the fallback path.

The values are drawn from the FHIR R4 grammar (datatypes: ``date``, ``dateTime``,
``instant``): year, year-month or full dates of years 0001-9999, and times with seconds,
an optional fraction and any offset from -14:00 to +14:00, sentinels such as
``9999-12-31`` and ``0001-01-01T00:00:00+14:00`` included. They are written into every
time element the rules read. Whatever the values, no exception escapes, the cancer and
the neurological sign are still read (a date can never hide them), and the HTTP answer
is never a 5xx.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import anyio
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks.contexts import parse_context
from cds_hooks.models import CDSRequest
from service.app import create_app
from service.clinical.engine import ClinicalScreener
from service.clinical.policy import ClinicalPolicy
from service.clinical.snapshot_reader import build_snapshot
from service.fhir.client import FhirClient, build_http_client
from service.fhir.gather import PatientDataGatherer
from service.fhir.record import PatientRecord
from service.fhir.settings import FhirSettings
from service.prefetch import PREFETCH_KEYS, RECORD_PARTS, REQUIRED_KEYS, build_prefetch_templates
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.bundles import searchset
from tests.inprocess import PortalClient, SettableClock, serve_app_in_portal
from tests.service.clinical.factories import (
    AT,
    LOINC,
    MRI_WHOLE_SPINE,
    NSCLC,
    SNOMED,
    URINARY_RETENTION,
    concept,
    library,
)
from tests.servicepaths import service_path

PATIENT_ID = "dates-patient"
BASE = "https://ehr.example.org/fhir"
SUBJECT = {"reference": f"Patient/{PATIENT_ID}"}


@st.composite
def fhir_dates(draw: st.DrawFn) -> str:
    """A FHIR ``date``: YYYY, YYYY-MM or YYYY-MM-DD."""
    day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    precision = draw(st.sampled_from(["year", "month", "day", "day"]))
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return text[: {"year": 4, "month": 7, "day": 10}[precision]]


@st.composite
def fhir_instants(draw: st.DrawFn) -> str:
    """A FHIR ``instant``: a full date, a time with seconds, an optional fraction and an offset."""
    day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    hour, minute, second = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    fraction = draw(st.sampled_from(["", ".0", ".5", ".123", ".999999", ".123456789"]))
    hours = draw(st.integers(0, 14))
    offset = draw(
        st.one_of(
            st.just("Z"),
            st.builds(
                lambda sign, minutes: f"{sign}{hours:02d}:{0 if hours == 14 else minutes:02d}",
                st.sampled_from("+-"),
                st.sampled_from([0, 30, 45]),
            ),
        )
    )
    stamp = f"{day.year:04d}-{day.month:02d}-{day.day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{stamp}{fraction}{offset}"


SENTINELS = [
    "9999-12-31",
    "9999",
    "0001",
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999-14:00",
    "9999-12-31T23:59:59+14:00",
]
date_times = st.one_of(st.sampled_from(SENTINELS), fhir_dates(), fhir_instants())
instants = st.one_of(st.sampled_from([value for value in SENTINELS if "T" in value]), fhir_instants())
dates = st.one_of(st.sampled_from([value for value in SENTINELS if "T" not in value]), fhir_dates())


@st.composite
def patient_data(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """The resources of one patient by prefetch key, every time element drawn from the grammar."""
    period = {"start": draw(date_times), "end": draw(date_times)}
    cancer: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "dates-cancer",
        "code": concept(NSCLC),
        "subject": SUBJECT,
        "recordedDate": draw(date_times),
        **({"onsetPeriod": period} if draw(st.booleans()) else {"onsetDateTime": draw(date_times)}),
        **({"abatementDateTime": draw(date_times)} if draw(st.booleans()) else {}),
    }
    sign = {
        "resourceType": "Observation",
        "id": "dates-sign",
        "status": "final",
        "code": concept(URINARY_RETENTION, SNOMED),
        "subject": SUBJECT,
        "effectiveDateTime": draw(date_times),
        "issued": draw(instants),
        "valueBoolean": True,
    }
    calcium = {
        "resourceType": "Observation",
        "id": "dates-calcium",
        "status": "final",
        "code": concept("2000-8", LOINC),
        "subject": SUBJECT,
        **(
            {"effectivePeriod": {"start": draw(date_times), "end": draw(date_times)}}
            if draw(st.booleans())
            else {"effectiveDateTime": draw(date_times)}
        ),
        "issued": draw(instants),
        "valueQuantity": {"value": 3.6, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }
    order = {
        "resourceType": "ServiceRequest",
        "id": "dates-order",
        "status": draw(st.sampled_from(["active", "completed"])),
        "intent": "order",
        "code": concept(MRI_WHOLE_SPINE, LOINC),
        "subject": SUBJECT,
        "authoredOn": draw(date_times),
        "occurrenceDateTime": draw(date_times),
    }
    procedure = {
        "resourceType": "Procedure",
        "id": "dates-procedure",
        "status": "completed",
        "code": concept(MRI_WHOLE_SPINE, LOINC),
        "subject": SUBJECT,
        "performedPeriod": {"start": draw(date_times), "end": draw(date_times)},
    }
    return {
        "patient": [{"resourceType": "Patient", "id": PATIENT_ID, "birthDate": draw(dates)}],
        "conditions": [cancer],
        "labs": [calcium],
        "findings": [sign],
        "imagingOrders": [order],
        "imagingProcedures": [procedure],
    }


def _record(data: dict[str, list[dict[str, Any]]]) -> PatientRecord:
    return PatientRecord(patient_id=PATIENT_ID, resources=data)


def _assert_read(record: PatientRecord) -> None:
    """The snapshot holds the cancer and the sign, and no resource was skipped as unreadable."""
    result = build_snapshot(record, AT, library(), ClinicalPolicy())
    groups = result.snapshot.finding_groups
    assert {"lung-cancer-primary", "mscc-neuro-signs"} <= groups, result.notes
    assert not [note for note in result.notes if "unreadable" in note or "not valid" in note], result.notes
    ClinicalScreener(library(), ClinicalPolicy()).screen(record, AT)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient_data())
def test_every_fhir_time_is_read_from_the_prefetch(data: dict[str, list[dict[str, Any]]]) -> None:
    _assert_read(_record(data))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient_data())
def test_every_fhir_time_is_read_from_the_fhir_server(data: dict[str, list[dict[str, Any]]]) -> None:
    """The fallback path: the client reads the same resources as search Bundles of a FHIR server."""
    templates = build_prefetch_templates(library().codes_of)
    by_type = {resources[0]["resourceType"]: key for key, resources in data.items()}

    def answer(request: httpx.Request) -> httpx.Response:
        resource_type = request.url.path.removeprefix("/fhir/").split("/")[0]
        if resource_type == "Patient":
            return httpx.Response(200, content=orjson.dumps(data["patient"][0]))
        key = by_type.get(resource_type)
        return httpx.Response(200, content=orjson.dumps(searchset(*(data[key] if key else ()))))

    async def gather() -> PatientRecord:
        fhir = FhirSettings(allowed_servers=[BASE], budget_s=5, request_timeout_s=5)
        async with build_http_client(fhir, transport=httpx.MockTransport(answer)) as http:
            client = FhirClient(http, fhir, mode="production")
            gatherer = PatientDataGatherer(
                templates, REQUIRED_KEYS, client, parts=RECORD_PARTS, max_entries=1000, budget_s=5
            )
            body = CDSRequest.model_validate(
                {
                    "hook": "patient-view",
                    "hookInstance": str(uuid.uuid4()),
                    "fhirServer": BASE,
                    "fhirAuthorization": {
                        "access_token": "t",
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "scope": "patient/*.read",
                        "subject": "mscc-cds",
                    },
                    "context": {"userId": "Practitioner/u1", "patientId": PATIENT_ID},
                }
            )
            return await gatherer.gather(body, parse_context(body.hook, body.context))

    record = anyio.run(gather)
    assert record.gaps == []
    _assert_read(record)


@pytest.fixture
def client(store_settings: StoreSettings) -> Iterator[PortalClient]:
    # One app for all examples: its lifespan (store, FHIR client) runs once.
    with serve_app_in_portal(create_app(Settings(store=store_settings), clock=SettableClock())) as portal_client:
        yield portal_client


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(patient_data())
def test_no_fhir_time_gives_a_5xx_through_http(client: PortalClient, data: dict[str, list[dict[str, Any]]]) -> None:
    prefetch: dict[str, Any] = {key: searchset(*data.get(key, ())) for key in PREFETCH_KEYS if key != "patient"}
    prefetch["patient"] = data["patient"][0]
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/u1", "patientId": PATIENT_ID},
        "prefetch": prefetch,
    }
    response = client.post(service_path("patient-view"), body)
    assert response.status_code == 200, response.text

"""The screening service audits and annotates every invocation, failed ones included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from cds_hooks.errors import MalformedRequest, PreconditionFailed
from cds_hooks.models import CDSRequest
from cds_hooks.registry import ClientIdentity, Invocation
from service.audit import AuditEvent
from service.clinical.outcome import Screening
from service.fhir.gather import PatientDataGatherer
from service.prefetch import RECORD_PARTS, REQUIRED_KEYS
from service.screening import EVALUATION_TIME_EXTENSION, ScreeningService

pytestmark = pytest.mark.anyio

TEMPLATES = {"patient": "Patient/{{context.patientId}}", "conditions": "Condition?patient={{context.patientId}}"}


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


def _invocation(prefetch: dict[str, object]) -> Invocation:
    request = CDSRequest.model_validate(
        {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/p1", "patientId": "pat-1"},
            "prefetch": prefetch,
        }
    )
    client = ClientIdentity(issuer="https://ehr.example.org", jti="j-1", tenant="t-1")
    return Invocation("mscc-patient-view", request, client, datetime(2026, 6, 1, 9, tzinfo=UTC))


def _service(audit: RecordingAudit) -> ScreeningService:
    gatherer = PatientDataGatherer(TEMPLATES, REQUIRED_KEYS, searcher=None, parts=RECORD_PARTS, max_entries=100)
    return ScreeningService(templates=TEMPLATES, gatherer=gatherer, screener=None, knowledge_version="k1", audit=audit)


async def test_a_412_is_audited_with_the_prefetch_states_and_gaps() -> None:
    audit = RecordingAudit()
    invocation = _invocation({"patient": {"resourceType": "Patient", "id": "pat-1"}})
    with pytest.raises(PreconditionFailed):
        await _service(audit).handle(invocation)
    [event] = audit.events
    assert event.status == 412
    assert event.prefetch == {"patient": "present", "conditions": "absent"}
    assert (event.client_iss, event.client_tenant, event.client_jti) == ("https://ehr.example.org", "t-1", "j-1")
    assert invocation.annotations["prefetch_keys_missing"] == ["conditions"]


async def test_a_successful_call_is_audited_with_status_200() -> None:
    audit = RecordingAudit()
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    invocation = _invocation({"patient": {"resourceType": "Patient", "id": "pat-1"}, "conditions": bundle})
    response = await _service(audit).handle(invocation)
    assert response.cards == []
    [event] = audit.events
    assert (event.status, event.patient_id, event.knowledge_version) == (200, "pat-1", "k1")
    assert invocation.annotations["prefetch_keys_missing"] == []


class ClockRecordingScreener:
    def __init__(self) -> None:
        self.times: list[datetime] = []

    def screen(self, record: object, at: datetime) -> Screening:
        self.times.append(at)
        return Screening(cards=(), rules=())


def _pinned(at: object) -> Invocation:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    invocation = _invocation({"patient": {"resourceType": "Patient", "id": "pat-1"}, "conditions": bundle})
    invocation.request.extension = {EVALUATION_TIME_EXTENSION: at}
    return invocation


def _screening_service(allow: bool) -> tuple[ScreeningService, ClockRecordingScreener]:
    screener = ClockRecordingScreener()
    gatherer = PatientDataGatherer(TEMPLATES, REQUIRED_KEYS, searcher=None, parts=RECORD_PARTS, max_entries=100)
    service = ScreeningService(
        templates=TEMPLATES,
        gatherer=gatherer,
        screener=screener,
        knowledge_version="k1",
        allow_evaluation_time=allow,
    )
    return service, screener


async def test_development_may_pin_the_evaluation_time() -> None:
    service, screener = _screening_service(allow=True)
    await service.handle(_pinned("2026-06-01T10:00:00+01:00"))
    assert screener.times == [datetime(2026, 6, 1, 9, tzinfo=UTC)]


async def test_production_ignores_a_pinned_evaluation_time() -> None:
    service, screener = _screening_service(allow=False)
    invocation = _pinned("2020-01-01T00:00:00+00:00")
    await service.handle(invocation)
    assert screener.times == [invocation.received_at]


@pytest.mark.parametrize("at", ["2026-06-01T10:00:00", "yesterday", 17])
async def test_a_pinned_time_must_be_an_aware_datetime(at: object) -> None:
    service, _ = _screening_service(allow=True)
    with pytest.raises(MalformedRequest, match="evaluation-time"):
        await service.handle(_pinned(at))


class FailingScreener:
    def screen(self, record: object, at: datetime) -> Screening:
        raise AssertionError("a deceased patient is never screened")


@pytest.mark.parametrize(
    "death",
    [
        {"deceasedBoolean": True},
        {"deceasedDateTime": "2026-05-31"},
        {"deceasedDateTime": "2026"},
        {"deceasedDateTime": "2026-05-31T10:00:00"},  # no offset: read as UTC, as everywhere
    ],
)
async def test_a_deceased_patient_is_not_screened_and_the_audit_says_why(death: dict[str, object]) -> None:
    audit = RecordingAudit()
    # not even the 412 for the missing conditions: no data is needed about a patient who has died
    invocation = _invocation({"patient": {"resourceType": "Patient", "id": "pat-1", **death}})
    gatherer = PatientDataGatherer(TEMPLATES, REQUIRED_KEYS, searcher=None, parts=RECORD_PARTS, max_entries=100)
    service = ScreeningService(
        templates=TEMPLATES, gatherer=gatherer, screener=FailingScreener(), knowledge_version="k1", audit=audit
    )
    response = await service.handle(invocation)
    assert response.cards == []
    [event] = audit.events
    assert (event.status, event.data_quality["withheld"]) == (200, "patient deceased")


@pytest.mark.parametrize(
    "alive",
    [
        {"deceasedBoolean": False},
        {"deceasedDateTime": "2027-01-01"},
        {"deceasedDateTime": "not a date"},
        # Not FHIR dateTimes, though Python's lenient parsers read them as past dates: they
        # once withheld every card from a living patient.
        {"deceasedDateTime": "20200101"},
        {"deceasedDateTime": "2020-W01"},
        {"deceasedDateTime": "\uff12\uff10\uff12\uff10"},
        {"deceasedDateTime": "2020\n"},
        {"deceasedDateTime": ["2020"]},
    ],
)
async def test_a_living_patient_is_screened(alive: dict[str, object]) -> None:
    audit = RecordingAudit()
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    invocation = _invocation({"patient": {"resourceType": "Patient", "id": "pat-1", **alive}, "conditions": bundle})
    await _service(audit).handle(invocation)
    [event] = audit.events
    assert "withheld" not in event.data_quality


async def test_the_audit_counts_what_was_dropped_by_key_and_reason_never_ids() -> None:
    audit = RecordingAudit()
    theirs = {"resourceType": "Condition", "id": "secret-id-1", "subject": {"reference": "Patient/other-9"}}
    mine = {"resourceType": "Condition", "id": "c-1", "subject": {"reference": "Patient/pat-1"}}
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": theirs}, {"resource": mine}]}
    invocation = _invocation({"patient": {"resourceType": "Patient", "id": "pat-1"}, "conditions": bundle})
    await _service(audit).handle(invocation)
    [event] = audit.events
    assert event.data_quality == {"excluded": [{"key": "conditions", "reason": "another-patient", "count": 1}]}
    assert invocation.annotations["excluded"] == [("conditions", "another-patient", 1)]
    assert "secret-id-1" not in repr(event) and "other-9" not in repr(event)

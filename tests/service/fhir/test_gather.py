"""The prefetch decision table of the gatherer, with an in-process fake FHIR searcher.

present: use it · null: no data, never re-query · absent: query fhirServer, 412 if required
and impossible · OperationOutcome: as absent. (The real FhirClient is exercised in
test_gather_fallback.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cds_hooks.contexts import HookContext, parse_context
from cds_hooks.errors import PayloadTooLarge, PreconditionFailed
from cds_hooks.models import CDSRequest
from cds_hooks.prefetch import PrefetchState
from service.cli.fhir_access import fhir_authorization
from service.clinical.recordparts import DataGap, Excluded, Exclusion, RecordPart
from service.fhir.gather import BUDGET_EXCEEDED, FhirFetchError, FhirSearcher, PatientDataGatherer
from service.fhir.record import PatientRecord, Resource
from tests.bundles import searchset

pytestmark = pytest.mark.anyio

TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "labs": "Observation?patient={{context.patientId}}&code=http://loinc.org|17861-6",
    "encounter": "Encounter/{{context.encounterId}}",
}
REQUIRED = frozenset({"patient", "conditions"})
SERVER = "https://ehr.example.org/fhir"
TOKEN = "opaque-fhir-token-77"

PATIENT = {"resourceType": "Patient", "id": "p-1", "birthDate": "1950-01-01"}
OWN = {"reference": "Patient/p-1"}
CONDITION = {"resourceType": "Condition", "id": "c-1", "subject": OWN}
CALCIUM = {"resourceType": "Observation", "id": "o-1", "subject": OWN}
ENCOUNTER = {"resourceType": "Encounter", "id": "e-1", "subject": OWN}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


FULL_PREFETCH = {
    "patient": PATIENT,
    "conditions": searchset(CONDITION),
    "labs": searchset(CALCIUM),
    "encounter": ENCOUNTER,
}


class FakeSearcher:
    """Answers rendered queries from a table; records every call."""

    def __init__(self, answers: dict[str, list[Resource] | BaseException] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str, str | None]] = []

    async def fetch(self, base_url: str, query: str, access_token: str | None) -> list[Resource]:
        self.calls.append((base_url, query, access_token))
        answer = self.answers.get(query, FhirFetchError("HTTP 404 from the FHIR server"))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def queries(self) -> list[str]:
        return [query for _, query, _ in self.calls]


class NeverAnswers:
    """A searcher whose server never replies (the budget must end the wait)."""

    async def fetch(self, base_url: str, query: str, access_token: str | None) -> list[Resource]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def _request(
    prefetch: dict[str, Any] | None, *, server: str | None = None, token: bool = True, **context: Any
) -> CDSRequest:
    body: dict[str, Any] = {
        "hook": context.pop("hook", "patient-view"),
        "hookInstance": "5f0b1c2e-8a57-4c1e-9d7a-2b6f3e4d5c10",
        "context": {"userId": "Practitioner/pr-1", "patientId": "p-1", **context},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if server is not None:
        body["fhirServer"] = server
        if token:
            body["fhirAuthorization"] = fhir_authorization(TOKEN)
    return CDSRequest.model_validate(body)


def _context(request: CDSRequest) -> HookContext:
    return parse_context(request.hook, request.context)


async def _gather(
    request: CDSRequest,
    searcher: FhirSearcher | None = None,
    *,
    max_entries: int = 100,
    budget_s: float | None = None,
    parts: dict[str, RecordPart] | None = None,
) -> PatientRecord:
    # Without ``parts`` the gaps name their key only: these tests are about prefetch semantics.
    gatherer = PatientDataGatherer(
        TEMPLATES, REQUIRED, searcher, parts=parts or {}, max_entries=max_entries, budget_s=budget_s
    )
    return await gatherer.gather(request, _context(request))


# -- present ---------------------------------------------------------------------------


async def test_full_prefetch_is_used_without_any_query() -> None:
    searcher = FakeSearcher()
    record = await _gather(_request(FULL_PREFETCH, server=SERVER), searcher)
    assert searcher.calls == []
    assert record.patient_id == "p-1"
    assert record.resources == {
        "patient": [PATIENT],
        "conditions": [CONDITION],
        "labs": [CALCIUM],
        "encounter": [ENCOUNTER],
    }
    assert set(record.states.values()) == {PrefetchState.PRESENT}
    assert record.gaps == [] and record.fetched == {}
    assert record.patient == PATIENT
    assert list(record.all_resources()) == [PATIENT, CONDITION, CALCIUM, ENCOUNTER]


async def test_an_empty_bundle_is_data_and_is_not_re_queried() -> None:
    searcher = FakeSearcher()
    record = await _gather(_request({**FULL_PREFETCH, "labs": searchset()}, server=SERVER), searcher)
    assert (record.resources["labs"], record.states["labs"], searcher.calls) == ([], PrefetchState.PRESENT, [])


async def test_operation_outcome_entries_inside_a_bundle_are_not_data() -> None:
    bundle = searchset(CONDITION, OUTCOME)
    record = await _gather(_request({**FULL_PREFETCH, "conditions": bundle}))
    assert record.resources["conditions"] == [CONDITION]


# -- null ------------------------------------------------------------------------------


async def test_null_means_no_data_and_is_never_re_queried() -> None:
    searcher = FakeSearcher()
    prefetch = {**FULL_PREFETCH, "labs": None, "conditions": None}
    record = await _gather(_request(prefetch, server=SERVER), searcher)
    assert searcher.calls == []
    assert record.resources["labs"] == [] and record.resources["conditions"] == []
    assert record.states["labs"] is PrefetchState.NULL
    assert record.gaps == []


# -- absent ----------------------------------------------------------------------------


async def test_absent_keys_are_queried_from_fhir_server_with_the_token() -> None:
    searcher = FakeSearcher({"Condition?patient=p-1": [CONDITION], "Encounter/e-1": [ENCOUNTER]})
    prefetch = {"patient": PATIENT, "labs": None}
    record = await _gather(_request(prefetch, server=SERVER + "/", encounterId="e-1"), searcher)
    assert sorted(searcher.calls) == [
        (SERVER, "Condition?patient=p-1", TOKEN),
        (SERVER, "Encounter/e-1", TOKEN),
    ]
    assert record.resources["conditions"] == [CONDITION]
    assert record.fetched == {"conditions": 1, "encounter": 1}
    assert record.states["conditions"] is PrefetchState.ABSENT
    assert record.gaps == []


async def test_without_fhir_authorization_the_query_goes_without_a_token() -> None:
    searcher = FakeSearcher({"Condition?patient=p-1": [CONDITION]})
    await _gather(_request({"patient": PATIENT, "labs": None, "encounter": None}, server=SERVER, token=False), searcher)
    assert searcher.calls == [(SERVER, "Condition?patient=p-1", None)]


async def test_required_key_absent_without_fhir_server_is_412_naming_the_key() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        await _gather(_request({"patient": PATIENT}), FakeSearcher())
    assert caught.value.status_code == 412
    assert caught.value.details == ["prefetch key 'conditions': not prefetched and no fhirServer to query"]


async def test_every_unobtainable_required_key_is_named() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        await _gather(_request(None))
    assert [detail.split(":")[0] for detail in caught.value.details] == [
        "prefetch key 'conditions'",
        "prefetch key 'patient'",
    ]


async def test_optional_key_absent_without_fhir_server_is_a_gap_not_an_error() -> None:
    record = await _gather(_request({"patient": PATIENT, "conditions": searchset(CONDITION)}))
    assert sorted(record.gaps, key=lambda gap: gap.key) == [
        DataGap("encounter", "not prefetched and no fhirServer to query"),
        DataGap("labs", "not prefetched and no fhirServer to query"),
    ]
    assert "labs" not in record.resources


async def test_gaps_and_exclusions_carry_the_part_of_the_record_of_their_key() -> None:
    # The rules and cards know parts of the record, never prefetch keys: the gatherer tells them which.
    theirs = {**CONDITION, "id": "c-2", "subject": {"reference": "Patient/p-2"}}
    parts = {"conditions": RecordPart.CONDITIONS, "labs": RecordPart.LAB_RESULTS}
    record = await _gather(_request({"patient": PATIENT, "conditions": searchset(CONDITION, theirs)}), parts=parts)
    assert sorted(record.gaps, key=lambda gap: gap.key) == [
        DataGap("encounter", "not prefetched and no fhirServer to query"),
        DataGap("labs", "not prefetched and no fhirServer to query", part=RecordPart.LAB_RESULTS),
    ]
    assert record.excluded == [Excluded("conditions", Exclusion.ANOTHER_PATIENT, 1, RecordPart.CONDITIONS)]


async def test_a_fhir_server_but_no_client_configured_is_a_gap() -> None:
    record = await _gather(_request({**FULL_PREFETCH, "labs": OUTCOME} | {"encounter": None}, server=SERVER), None)
    assert record.gaps == [DataGap("labs", "not prefetched and no FHIR client configured")]
    with pytest.raises(PreconditionFailed, match="Required FHIR data"):
        await _gather(_request({"patient": PATIENT}, server=SERVER), None)


async def test_a_failed_query_of_an_optional_key_is_a_gap_with_its_reason() -> None:
    searcher = FakeSearcher({"Observation?patient=p-1&code=http://loinc.org|17861-6": FhirFetchError("HTTP 503")})
    prefetch = {"patient": PATIENT, "conditions": searchset(), "encounter": None}
    record = await _gather(_request(prefetch, server=SERVER), searcher)
    assert record.gaps == [DataGap("labs", "HTTP 503")]


async def test_a_failed_query_of_a_required_key_is_412_with_its_reason() -> None:
    searcher = FakeSearcher({"Patient/p-1": FhirFetchError("HTTP 401 from the FHIR server")})
    with pytest.raises(PreconditionFailed) as caught:
        await _gather(_request({"conditions": searchset(), "labs": None, "encounter": None}, server=SERVER), searcher)
    assert caught.value.details == ["prefetch key 'patient': HTTP 401 from the FHIR server"]


async def test_a_template_the_context_cannot_fill_is_a_gap() -> None:
    # patient-view without encounterId: the encounter template cannot be rendered.
    searcher = FakeSearcher()
    record = await _gather(
        _request({"patient": PATIENT, "conditions": searchset(), "labs": None}, server=SERVER), searcher
    )
    assert searcher.calls == []
    [gap] = record.gaps
    assert gap.key == "encounter"
    assert gap.reason.startswith("template cannot be rendered: context.encounterId is not available")


async def test_an_unexpected_searcher_failure_is_not_swallowed() -> None:
    searcher = FakeSearcher({"Condition?patient=p-1": RuntimeError("bug in the client")})
    with pytest.raises(RuntimeError, match="bug in the client"):
        await _gather(_request({"patient": PATIENT, "labs": None, "encounter": None}, server=SERVER), searcher)


async def test_a_query_still_running_when_the_budget_ends_is_a_gap() -> None:
    prefetch = {"patient": PATIENT, "conditions": searchset(), "encounter": None}
    record = await _gather(_request(prefetch, server=SERVER), NeverAnswers(), budget_s=0.01)
    assert record.gaps == [DataGap("labs", BUDGET_EXCEEDED)]


# -- OperationOutcome ------------------------------------------------------------------


async def test_an_operation_outcome_is_treated_as_absent_and_re_queried() -> None:
    searcher = FakeSearcher({"Condition?patient=p-1": [CONDITION]})
    prefetch = {**FULL_PREFETCH, "conditions": OUTCOME}
    record = await _gather(_request(prefetch, server=SERVER), searcher)
    assert searcher.queries() == ["Condition?patient=p-1"]
    assert record.states["conditions"] is PrefetchState.OPERATION_OUTCOME
    assert record.resources["conditions"] == [CONDITION]


async def test_an_operation_outcome_for_a_required_key_without_fhir_server_is_412() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        await _gather(_request({**FULL_PREFETCH, "patient": OUTCOME}))
    assert caught.value.details == ["prefetch key 'patient': not prefetched and no fhirServer to query"]


# -- pagination, draft orders, caps ----------------------------------------------------


async def test_a_paginated_prefetch_bundle_is_completed_from_fhir_server() -> None:
    next_url = SERVER + "/Condition?patient=p-1&page=2"
    searcher = FakeSearcher({next_url: [{"resourceType": "Condition", "id": "c-2", "subject": OWN}]})
    prefetch = {**FULL_PREFETCH, "conditions": searchset(CONDITION, next_url=next_url)}
    record = await _gather(_request(prefetch, server=SERVER), searcher)
    assert searcher.queries() == [next_url]
    assert [resource["id"] for resource in record.resources["conditions"]] == ["c-1", "c-2"]


async def test_a_paginated_prefetch_without_fhir_server_keeps_the_first_page_and_says_so() -> None:
    prefetch = {**FULL_PREFETCH, "labs": searchset(CALCIUM, next_url=SERVER + "/Observation?page=2")}
    record = await _gather(_request(prefetch))
    assert record.resources["labs"] == [CALCIUM]
    assert record.gaps == [DataGap("labs", "prefetch has further pages and no fhirServer to query", partial=True)]


async def test_a_required_key_read_in_part_is_screened_not_412() -> None:
    prefetch = {**FULL_PREFETCH, "conditions": searchset(CONDITION, next_url=SERVER + "/Condition?page=2")}
    record = await _gather(_request(prefetch))
    assert record.resources["conditions"] == [CONDITION]
    assert record.gaps == [DataGap("conditions", "prefetch has further pages and no fhirServer to query", partial=True)]


async def test_order_sign_draft_orders_are_collected() -> None:
    draft = {"resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order", "subject": OWN}
    request = _request(FULL_PREFETCH, hook="order-sign", draftOrders=searchset(draft))
    record = await _gather(request)
    assert record.draft_orders == [draft]


async def test_more_resources_than_the_cap_is_413() -> None:
    many = searchset(*({"resourceType": "Condition", "id": f"c-{n}", "subject": OWN} for n in range(10)))
    with pytest.raises(PayloadTooLarge, match="more than 5 resources") as caught:
        await _gather(_request({**FULL_PREFETCH, "conditions": many}), max_entries=5)
    assert caught.value.status_code == 413


async def test_fetched_resources_count_towards_the_cap() -> None:
    searcher = FakeSearcher({"Condition?patient=p-1": [CONDITION] * 10})
    with pytest.raises(PayloadTooLarge):
        await _gather(
            _request({"patient": PATIENT, "labs": None, "encounter": None}, server=SERVER), searcher, max_entries=5
        )

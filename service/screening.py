"""The MSCC screening CDS Service: request → patient data → rules → cards.

It owns no I/O of its own: data comes from a :class:`PatientDataGatherer`, decisions from
a :class:`Screener`, and each invocation is handed to an :class:`AuditSink`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from cds_hooks.contexts import PREFETCH_TOKEN_FIELDS, parse_context
from cds_hooks.errors import CDSHooksError, MalformedRequest
from cds_hooks.models import CDSResponse, FeedbackRequest, ServiceDefinition
from cds_hooks.prefetch import check_template_tokens
from cds_hooks.registry import ClientIdentity, Invocation
from service.audit import AuditEvent, AuditSink, CardRecord
from service.clinical.deceased import is_deceased
from service.clinical.outcome import HOOKS, Screener, Screening
from service.fhir.gather import PatientDataGatherer
from service.fhir.record import PatientRecord

__all__ = [
    "EVALUATION_TIME_EXTENSION",
    "SERVICE_IDS",
    "WITHHELD_DECEASED",
    "FeedbackSink",
    "ScreeningService",
    "service_id_for",
]

#: One CDS Service per hook, each with its own id: clients key services by id (the spec's
#: URL is ``{baseUrl}/cds-services/{id}``), so four entries sharing one id collapse into one.
SERVICE_IDS = {hook: f"mscc-{hook}" for hook in HOOKS}
_TITLES = {
    "patient-view": "MSCC screening when a lung-cancer patient's record is opened",
    "encounter-start": "MSCC screening at the start of a lung-cancer patient's encounter",
    "order-select": "MSCC imaging advice while an order is being selected",
    "order-sign": "MSCC imaging advice before an order is signed",
}
_PURPOSE = (
    "Screens people with a past or current lung cancer for metastatic spinal cord compression "
    "(whole-spine MRI within 24 hours) and spinal metastases (whole-spine MRI within 1 week) "
    "per NICE NG234/QS56, plus hypercalcaemia, Pancoast and NG12 suspected lung cancer cards."
)
_DESCRIPTIONS = {
    "patient-view": f"{_PURPOSE} Called when the patient's record is opened.",
    "encounter-start": f"{_PURPOSE} Called when an encounter starts.",
    "order-select": f"{_PURPOSE} Called while orders are drafted: reviews spine imaging among the draft orders.",
    "order-sign": f"{_PURPOSE} Called before orders are signed: reviews spine imaging among the draft orders.",
}
_RECORD_USAGE = "Needs the patient's Conditions; labs, findings and recent imaging improve the advice."
#: The order hooks read the same record (the rules decide on it), and the draft orders,
#: which no prefetch template can ask for: they travel in the context.
_DRAFT_USAGE = (
    " Needs context.draftOrders, the Bundle of the orders being written: spine-imaging ServiceRequests among them"
    " are reviewed."
)
_USAGE = {
    "patient-view": _RECORD_USAGE,
    "encounter-start": _RECORD_USAGE,
    "order-select": _RECORD_USAGE + _DRAFT_USAGE,
    "order-sign": _RECORD_USAGE + _DRAFT_USAGE,
}
#: Request extension that pins the evaluation time, e.g. to replay a recorded hook or a
#: scenario from profiles/examples/. Honoured only in development mode: in production
#: the rules' windows are always measured from the moment the hook arrives.
EVALUATION_TIME_EXTENSION = "org.mscc-cds.evaluation-time"
#: The audit's reason when no screening ran because the patient had died.
WITHHELD_DECEASED = "patient deceased"


def service_id_for(hook: str) -> str:
    """The id of the CDS Service that answers ``hook`` (KeyError for a hook we do not offer)."""
    return SERVICE_IDS[hook]


class FeedbackSink(Protocol):
    async def record_feedback(
        self, service_id: str, feedback: FeedbackRequest, client: ClientIdentity | None
    ) -> Mapping[str, Any]: ...


class ScreeningService:
    """The screening CDS Service for one hook; implements :class:`cds_hooks.registry.CDSService`.

    The application registers one per hook; they share the gatherer, screener and stores.
    """

    def __init__(
        self,
        *,
        hook: str = "patient-view",
        templates: Mapping[str, str],
        gatherer: PatientDataGatherer,
        screener: Screener | None,
        knowledge_version: str,
        audit: AuditSink | None = None,
        feedback_sink: FeedbackSink | None = None,
        allow_evaluation_time: bool = False,
    ) -> None:
        for template in templates.values():
            # A template this hook's context cannot fill would be a prefetch no client can satisfy.
            check_template_tokens(template, PREFETCH_TOKEN_FIELDS[hook])
        self._templates = dict(templates)
        self._gatherer = gatherer
        self._screener = screener
        self._knowledge_version = knowledge_version
        self._audit = audit
        self._feedback_sink = feedback_sink
        self._allow_evaluation_time = allow_evaluation_time
        self._id = service_id_for(hook)
        self._definition = ServiceDefinition(
            hook=hook,
            id=self._id,
            title=_TITLES[hook],
            description=_DESCRIPTIONS[hook],
            prefetch=self._templates,
            usageRequirements=_USAGE[hook],
        )

    @property
    def id(self) -> str:
        return self._id

    @property
    def definition(self) -> ServiceDefinition:
        return self._definition

    async def handle(self, invocation: Invocation) -> CDSResponse:
        started = time.perf_counter()
        request = invocation.request
        record: PatientRecord | None = None
        screening = Screening(cards=(), rules=())
        withheld: str | None = None
        status = 500
        try:
            context = parse_context(request.hook, request.context)
            at = self._evaluation_time(invocation)
            # Collected first and checked second, so that a 412 is still audited and
            # logged with the prefetch states and the gaps that caused it.
            record = await self._gatherer.collect(request, context)
            if is_deceased(record.patient, at):
                # No screening card for a dead patient, and no 412 asking for more of their data.
                withheld = WITHHELD_DECEASED
            else:
                self._gatherer.require(record)
                if self._screener is not None:
                    screening = self._screener.screen(record, at)
            status = 200
        except CDSHooksError as exc:
            status = exc.status_code
            raise
        finally:
            invocation.annotations.update(self._annotations(record, screening))
            if self._audit is not None:
                event = self._audit_event(invocation, record, screening, status, started, withheld)
                await self._audit.record(event)
        return CDSResponse(cards=list(screening.cards))

    async def feedback(
        self, service_id: str, feedback: FeedbackRequest, client: ClientIdentity | None
    ) -> Mapping[str, Any]:
        if self._feedback_sink is None:
            return {"received": len(feedback.feedback)}
        return await self._feedback_sink.record_feedback(service_id, feedback, client)

    def _evaluation_time(self, invocation: Invocation) -> datetime:
        pinned = (invocation.request.extension or {}).get(EVALUATION_TIME_EXTENSION)
        if not self._allow_evaluation_time or pinned is None:
            return invocation.received_at
        try:
            at = datetime.fromisoformat(pinned) if isinstance(pinned, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise MalformedRequest(f"extension {EVALUATION_TIME_EXTENSION} must be a dateTime with a UTC offset.")
        return at

    @staticmethod
    def _annotations(record: PatientRecord | None, screening: Screening) -> dict[str, object]:
        return {
            "cards": len(screening.cards),
            "rule_ids_fired": [outcome.rule_id for outcome in screening.rules if outcome.result == "fired"],
            "prefetch_keys_missing": sorted(gap.key for gap in record.gaps) if record else [],
            "fhir_calls": len(record.fetched) if record else 0,
            "notes": len(screening.notes),
            # for the metrics only (not on the log allowlist): low-cardinality labels
            "card_rules": [
                (card.source.topic.code if card.source.topic else "", card.indicator) for card in screening.cards
            ],
            "rule_results": [(outcome.rule_id, outcome.rule_version, outcome.result) for outcome in screening.rules],
            "excluded": [(item.key, item.reason.value, item.count) for item in record.excluded] if record else [],
        }

    def _audit_event(
        self,
        invocation: Invocation,
        record: PatientRecord | None,
        screening: Screening,
        status: int,
        started: float,
        withheld: str | None,
    ) -> AuditEvent:
        request = invocation.request
        patient_id = request.context.get("patientId")
        client = invocation.client
        return AuditEvent(
            recorded_at=datetime.now(UTC),
            hook_instance=request.hookInstance,
            service_id=invocation.service_id,
            hook=request.hook,
            knowledge_version=self._knowledge_version,
            patient_id=patient_id if isinstance(patient_id, str) else None,
            rules=list(screening.rules),
            cards=[
                CardRecord(
                    uuid=card.uuid or "",
                    rule_id=card.source.topic.code if card.source.topic else "",
                    indicator=card.indicator,
                )
                for card in screening.cards
            ],
            prefetch={key: state.value for key, state in record.states.items()} if record else {},
            fhir_queries=dict(record.fetched) if record else {},
            client_iss=client.issuer if client else None,
            client_tenant=client.tenant if client else None,
            client_jti=client.jti if client else None,
            latency_ms=(time.perf_counter() - started) * 1000,
            status=status,
            data_quality=_data_quality(record, withheld),
        )


def _data_quality(record: PatientRecord | None, withheld: str | None) -> dict[str, Any]:
    """The audit's account of what was not used and why: keys, fixed reasons, counts."""
    quality: dict[str, Any] = {}
    if record is not None and record.excluded:
        quality["excluded"] = [
            {"key": item.key, "reason": item.reason.value, "count": item.count} for item in record.excluded
        ]
    if record is not None and record.gaps:
        quality["unreadable"] = {gap.key: gap.reason for gap in record.gaps}
    if withheld is not None:
        quality["withheld"] = withheld
    return quality

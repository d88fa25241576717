"""The audit event of one hook invocation, and where it goes.

A separate stream from the operational logs (engineering.md §3.4): it holds what a
clinical safety review needs to reconstruct a decision: which rules in which version
saw which data and what they answered. The patient reference leaves the process only
pseudonymised (the store applies a keyed HMAC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from service.clinical.outcome import RuleOutcome

__all__ = ["AuditEvent", "AuditSink", "AuditSnapshot", "CardRecord"]


@dataclass(frozen=True, slots=True)
class CardRecord:
    uuid: str
    rule_id: str
    indicator: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    recorded_at: datetime
    hook_instance: str
    service_id: str
    hook: str
    knowledge_version: str
    #: the raw FHIR id; the sink must pseudonymise it before it is stored
    patient_id: str | None
    rules: Sequence[RuleOutcome]
    cards: Sequence[CardRecord]
    #: prefetch key -> present / null / absent / operation-outcome
    prefetch: Mapping[str, str]
    #: prefetch key -> resources fetched from fhirServer for it
    fhir_queries: Mapping[str, int]
    client_iss: str | None
    client_tenant: str | None
    client_jti: str | None
    latency_ms: float
    status: int
    #: what a safety review needs beyond the rules (docs/clinical/patient-integrity.md):
    #: ``excluded`` [{key, reason, count}] resources not the patient's, ``unreadable``
    #: {key: reason} data that could not be used, ``withheld`` why no screening ran.
    #: Keys, fixed reasons and counts only: never ids or values.
    data_quality: Mapping[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    async def record(self, event: AuditEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class AuditSnapshot:
    """The audit trail's counters at one moment, for metrics and readiness (this process only)."""

    #: records appended to the spool since start
    spooled: int
    #: records confirmed in the database since start
    written: int
    #: records the database refused, kept in a dead-letter file, since start
    dead_lettered: int
    #: records in the spool (this process's and adopted ones) not yet in the database
    backlog: int
    #: age of the oldest of them, 0 when there is none
    oldest_age_s: float
    #: whether the audit writer's last statement reached the database
    database_reachable: bool

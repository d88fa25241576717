"""The audit trail: each record spooled to local disk before its hook answers, then moved into the database.

:class:`AuditTrail` is the hook's :class:`service.audit.AuditSink`: it pseudonymises the
patient, makes every text field storable (:mod:`service.store.text`) and appends the
record to the :class:`~service.store.spool.Spool`, one write per call. When the spool
cannot take it the call answers 503: a call is never answered without its audit record.

:class:`AuditWriter` is one background task per process. It reads spooled records in
batches and inserts them with ``ON CONFLICT DO NOTHING`` on the key (segment id,
sequence number), so a record sent twice (after a crash between the insert and the
spool's progress file) is stored once; the audit id is derived from the same key, so
the child rows are idempotent too. When a batch fails it tells the failures apart
(:mod:`service.store.failures`): with the database unreachable it waits with backoff and
tries again, without limit (the records are safe in the spool); otherwise it writes the
batch's records one by one, each in its own transaction, retries a transient failure a
bounded number of times, and dead-letters a record the database refuses, with the
reason. One bad record therefore never takes another with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cds_hooks.errors import ServiceUnavailable
from service.audit import AuditEvent, AuditSnapshot
from service.store.db import insert_skipping_conflicts, write_transaction
from service.store.failures import Failure, classify
from service.store.pseudonym import Pseudonymiser
from service.store.spool import Segment, Spool, SpoolEntry, SpoolUnavailable
from service.store.tables import audit_cards, audit_events, audit_rule_results
from service.store.text import storable

__all__ = ["AUDIT_TEXT_CAPS", "AuditTrail", "AuditWriter", "audit_payload", "write_audit_events"]

logger = logging.getLogger(__name__)

#: Characters kept of each text field of an audit record (see service/store/text.py):
#: hookInstance is a UUID (36) per the spec, iss a URL, jti and tenant short ids.
AUDIT_TEXT_CAPS = {
    "hook_instance": 256,
    "service_id": 128,
    "hook": 128,
    "knowledge_version": 128,
    "client_iss": 2048,
    "client_tenant": 256,
    "client_jti": 256,
    "rule_id": 64,
    "rule_version": 64,
    "result": 32,
    "card_uuid": 256,
    "indicator": 16,
    "prefetch": 64,
}
#: The namespace of audit ids derived from (segment id, sequence number).
_AUDIT_ID_NAMESPACE = uuid.UUID("7c1f0e3a-9b52-4d1e-8f3c-6a2d5e4b9c10")
#: How often a writer looks for segments orphaned by a process that died.
_ADOPT_INTERVAL_S = 5.0
#: How often an idle writer checks that the database answers (readiness detail, metric).
_PING_INTERVAL_S = 10.0
_PING_TIMEOUT_S = 2.0
#: Waits between attempts while the database is unreachable: doubling, then capped.
_OUTAGE_BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Waits between attempts at one record after a transient failure.
_RETRY_BACKOFF_S = (0.1, 0.3, 1.0, 3.0)
#: How long a hook waits before retrying when the spool cannot take its record.
SPOOL_RETRY_AFTER_S = 30


def _cap(field: str, value: str | None) -> str | None:
    return storable(value, AUDIT_TEXT_CAPS[field])


def audit_payload(event: AuditEvent, pseudonymiser: Pseudonymiser, service_version: str) -> dict[str, Any]:
    """What the spool keeps of ``event``: storable text, the patient pseudonymised, JSON types only."""
    return {
        "event": {
            "recorded_at": event.recorded_at.isoformat(),
            "hook_instance": _cap("hook_instance", event.hook_instance),
            "service_id": _cap("service_id", event.service_id),
            "hook": _cap("hook", event.hook),
            "service_version": service_version,
            "knowledge_version": _cap("knowledge_version", event.knowledge_version),
            "patient_pseudonym": pseudonymiser.pseudonym(event.patient_id) if event.patient_id else None,
            "prefetch": {_cap("prefetch", key): _cap("prefetch", value) for key, value in event.prefetch.items()},
            "fhir_queries": {_cap("prefetch", key): int(value) for key, value in event.fhir_queries.items()},
            "client_iss": _cap("client_iss", event.client_iss),
            "client_tenant": _cap("client_tenant", event.client_tenant),
            "client_jti": _cap("client_jti", event.client_jti),
            "latency_ms": float(event.latency_ms),
            "status": int(event.status),
            # our own words (prefetch keys, reasons, counts, why screening was withheld): never client text
            "data_quality": dict(event.data_quality),
        },
        "rules": [
            [_cap("rule_id", rule.rule_id), _cap("rule_version", rule.rule_version), _cap("result", rule.result)]
            for rule in event.rules
        ],
        "cards": [
            [_cap("card_uuid", card.uuid), _cap("rule_id", card.rule_id), _cap("indicator", card.indicator)]
            for card in event.cards
        ],
    }


def audit_id_of(spool_id: str, seq: int) -> str:
    return str(uuid.uuid5(_AUDIT_ID_NAMESPACE, f"{spool_id}/{seq}"))


def _rows(
    spool_id: str, seq: int, payload: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    audit_id = audit_id_of(spool_id, seq)
    event = dict(payload["event"])
    event["recorded_at"] = datetime.fromisoformat(event["recorded_at"])
    event |= {"audit_id": audit_id, "spool_id": spool_id, "spool_seq": seq}
    rules = [
        {"audit_id": audit_id, "position": position, "rule_id": rule_id, "rule_version": version, "result": result}
        for position, (rule_id, version, result) in enumerate(payload["rules"])
    ]
    cards = [
        {"audit_id": audit_id, "position": position, "card_uuid": uuid_, "rule_id": rule_id, "indicator": indicator}
        for position, (uuid_, rule_id, indicator) in enumerate(payload["cards"])
    ]
    return event, rules, cards


async def _insert(connection: AsyncConnection, records: Sequence[tuple[str, int, dict[str, Any]]]) -> None:
    """Insert ``records`` (segment id, sequence number, payload), skipping those already stored."""
    events: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    for spool_id, seq, payload in records:
        event, event_rules, event_cards = _rows(spool_id, seq, payload)
        events.append(event)
        rules.extend(event_rules)
        cards.extend(event_cards)
    await connection.execute(insert_skipping_conflicts(connection, audit_events), events)
    if rules:
        await connection.execute(insert_skipping_conflicts(connection, audit_rule_results), rules)
    if cards:
        await connection.execute(insert_skipping_conflicts(connection, audit_cards), cards)


async def write_audit_events(
    engine: AsyncEngine, events: Sequence[AuditEvent], pseudonymiser: Pseudonymiser, service_version: str
) -> list[str]:
    """Store ``events`` directly, in one transaction (imports, tests); returns their audit ids, in order."""
    if not events:
        return []
    batch = f"direct-{uuid.uuid4().hex}"
    records = [
        (batch, seq, audit_payload(event, pseudonymiser, service_version)) for seq, event in enumerate(events, 1)
    ]
    async with write_transaction(engine) as connection:
        await _insert(connection, records)
    return [audit_id_of(batch, seq) for _, seq, _ in records]


class AuditTrail:
    """The hooks' :class:`service.audit.AuditSink`: spools each record before the call is answered."""

    def __init__(self, spool: Spool, pseudonymiser: Pseudonymiser, *, service_version: str) -> None:
        self._spool = spool
        self._pseudonymiser = pseudonymiser
        self._service_version = service_version

    async def record(self, event: AuditEvent) -> None:
        """Append ``event`` to the spool; 503 (the EHR retries) when the spool cannot take it."""
        payload = audit_payload(event, self._pseudonymiser, self._service_version)
        try:
            await self._spool.append(payload)
        except SpoolUnavailable:
            raise ServiceUnavailable(
                "The service cannot record this call in its audit trail; try again shortly.",
                retry_after_s=SPOOL_RETRY_AFTER_S,
            ) from None


class AuditWriter:
    """The background task that moves spooled records into the database; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        spool: Spool,
        *,
        batch_size: int,
        retry_attempts: int,
        prepare: Callable[[], Awaitable[None]] | None = None,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        #: called after each round of work (the metrics of several workers copy the counters then)
        self._on_step = on_step
        self._spool = spool
        self._batch_size = batch_size
        self._retry_attempts = retry_attempts
        self._prepare = prepare
        self._task: asyncio.Task[None] | None = None
        self._outage_attempt = 0
        self._last_adoption = 0.0
        self._last_contact = 0.0
        #: whether the last statement the writer sent reached the database
        self.database_reachable = prepare is None
        #: the last error that was not an outage, for the dead-letter reason
        self._last_failure: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the audit writer is already started")
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    def snapshot(self) -> AuditSnapshot:
        spool = self._spool
        return AuditSnapshot(
            spooled=spool.spooled,
            written=spool.written,
            dead_lettered=spool.dead_lettered,
            backlog=spool.backlog,
            oldest_age_s=spool.oldest_age_s(),
            database_reachable=self.database_reachable,
        )

    async def flush(self, timeout: float) -> bool:
        """Wait until every record spooled so far is in the database (or dead-lettered); ``False`` on timeout."""
        if not self.database_reachable:
            return False  # nothing will move until it is back; callers do not wait for it
        try:
            async with asyncio.timeout(timeout):
                while self._spool.backlog and self.running:
                    self._spool.progressed.clear()
                    self._spool.appended.set()
                    await self._spool.progressed.wait()
        except TimeoutError:
            return False
        return self._spool.backlog == 0

    async def stop(self, timeout: float) -> None:
        """Write what is spooled (waiting at most ``timeout`` seconds), then stop; the rest stays on disk."""
        if self._task is None:
            return
        await self.flush(timeout)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        left = self._spool.backlog
        logger.info(
            "audit writer stopped: %d written, %d dead-lettered, %d left in the spool for the next start",
            self._spool.written,
            self._spool.dead_lettered,
            left,
            extra={
                "event": "audit_writer_stopped",
                "written": self._spool.written,
                "failed": self._spool.dead_lettered,
                "count": left,
            },
        )

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception as exc:  # the writer must outlive anything; the records stay in the spool
                logger.error("audit writer step failed", exc_info=exc, extra={"event": "audit_writer_error"})
                await asyncio.sleep(self._outage_wait())
            if self._on_step is not None:
                self._on_step()

    async def _step(self) -> None:
        """One round of work: each segment's next batch, or a wait (idle, or backing off)."""
        if self._prepare is not None and not await self._attempt_prepare(self._prepare):
            await asyncio.sleep(self._outage_wait())
            return
        now = time.monotonic()
        if now - self._last_adoption >= _ADOPT_INTERVAL_S:
            self._last_adoption = now
            self._spool.adopt_orphans()
        segments = self._spool.with_backlog()
        if not segments:
            await self._idle()
            return
        for segment in segments:
            if not await self._drain_batch(segment):
                await asyncio.sleep(self._outage_wait())
                return

    async def _attempt_prepare(self, prepare: Callable[[], Awaitable[None]]) -> bool:
        try:
            await prepare()
        except Exception as exc:
            if classify(exc) != "unreachable":
                raise
            self._mark_unreachable(exc)
            return False
        self._prepare = None
        self._mark_reachable()
        return True

    async def _idle(self) -> None:
        self._spool.appended.clear()
        timeout = min(_ADOPT_INTERVAL_S, _PING_INTERVAL_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._spool.appended.wait()
                return
        if time.monotonic() - self._last_contact >= _PING_INTERVAL_S:
            await self._ping()

    async def _ping(self) -> None:
        try:
            async with asyncio.timeout(_PING_TIMEOUT_S), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            self._mark_unreachable(exc)
        else:
            self._mark_reachable()

    async def _drain_batch(self, segment: Segment) -> bool:
        """Write the next batch of ``segment``; ``False`` when the database is unreachable."""
        entries, end = self._spool.read(segment, self._batch_size)
        if not entries:
            if end > segment.done:
                self._spool.advance(segment, end, written=0)
            return True
        failure = await self._write(entries)
        if failure is None:
            self._spool.advance(segment, end, written=len(entries))
            return True
        if failure == "unreachable":
            return False
        return await self._write_one_by_one(segment, entries, end)

    async def _write(self, entries: Sequence[SpoolEntry]) -> Failure | None:
        try:
            async with write_transaction(self._engine) as connection:
                await _insert(connection, [(entry.segment, entry.seq, entry.payload) for entry in entries])
        except Exception as exc:
            failure = classify(exc)
            if failure == "unreachable":
                self._mark_unreachable(exc)
            else:
                self._last_failure = exc
            return failure
        self._mark_reachable()
        return None

    async def _write_one_by_one(self, segment: Segment, entries: Sequence[SpoolEntry], end: int) -> bool:
        for entry in entries:
            for attempt in range(self._retry_attempts):
                failure = await self._write([entry])
                if failure is None:
                    self._spool.advance(segment, entry.end, written=1)
                    break
                if failure == "unreachable":
                    return False
                if failure == "permanent" or attempt == self._retry_attempts - 1:
                    self._spool.dead_letter(segment, entry, self._reason(failure, attempt + 1))
                    self._spool.advance(segment, entry.end, written=0)
                    break
                await asyncio.sleep(_RETRY_BACKOFF_S[min(attempt, len(_RETRY_BACKOFF_S) - 1)])
        if end > segment.done:
            self._spool.advance(segment, end, written=0)
        return True

    def _reason(self, failure: Failure, attempts: int) -> str:
        exc = self._last_failure
        orig = getattr(exc, "orig", None) or exc
        detail = f"{type(orig).__name__}: {str(orig)[:500]}" if orig is not None else "unknown error"
        if failure == "permanent":
            return f"refused by the database: {detail}"
        return f"failed {attempts} times (transient): {detail}"

    def _outage_wait(self) -> float:
        wait = _OUTAGE_BACKOFF_S[min(self._outage_attempt, len(_OUTAGE_BACKOFF_S) - 1)]
        self._outage_attempt += 1
        return wait

    def _mark_unreachable(self, exc: BaseException) -> None:
        if self.database_reachable or self._outage_attempt == 0:
            logger.error(
                "audit writer: database unreachable, records wait in the spool",
                exc_info=exc,
                extra={"event": "audit_database_unreachable", "count": self._spool.backlog},
            )
        self.database_reachable = False

    def _mark_reachable(self) -> None:
        if not self.database_reachable and self._outage_attempt:
            logger.info(
                "audit writer: database reachable again",
                extra={"event": "audit_database_reachable", "count": self._spool.backlog},
            )
        self.database_reachable = True
        self._outage_attempt = 0
        self._last_contact = time.monotonic()

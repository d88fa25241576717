"""The audit trail's writer: the hook hands events to a bounded queue, one task writes them.

Writing on the hook's own path would add a database round trip (and, on SQLite, a wait
for the write lock) to every call the clinician is waiting on. Instead
:meth:`AuditWriter.record` only enqueues; a single task drains the queue in batches,
one transaction per batch. The queue is bounded so that a database outage cannot eat
the process's memory: when it is full, events are dropped, and every drop and every
failed write is counted in the log (warning/error with counts, never event contents).
:meth:`AuditWriter.stop` drains the queue on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.audit import AuditEvent
from service.store.db import write_transaction
from service.store.pseudonym import Pseudonymiser
from service.store.tables import audit_cards, audit_events, audit_rule_results

__all__ = ["AuditWriter", "write_audit_events"]

logger = logging.getLogger(__name__)

#: Events per transaction: large enough to keep up with bursts, small enough that one
#: failed write loses little.
_BATCH_SIZE = 200

_Item = AuditEvent | asyncio.Future[None]


async def write_audit_events(
    engine: AsyncEngine, events: Sequence[AuditEvent], pseudonymiser: Pseudonymiser, service_version: str
) -> list[str]:
    """Store ``events`` in one transaction; returns their new audit ids, in order."""
    parents: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    for event in events:
        audit_id = str(uuid.uuid4())
        parents.append(_event_row(audit_id, event, pseudonymiser, service_version))
        rules.extend(
            {
                "audit_id": audit_id,
                "position": position,
                "rule_id": outcome.rule_id,
                "rule_version": outcome.rule_version,
                "result": outcome.result,
            }
            for position, outcome in enumerate(event.rules)
        )
        cards.extend(
            {
                "audit_id": audit_id,
                "position": position,
                "card_uuid": card.uuid,
                "rule_id": card.rule_id,
                "indicator": card.indicator,
            }
            for position, card in enumerate(event.cards)
        )
    if not parents:
        return []
    async with write_transaction(engine) as connection:
        await connection.execute(insert(audit_events), parents)
        if rules:
            await connection.execute(insert(audit_rule_results), rules)
        if cards:
            await connection.execute(insert(audit_cards), cards)
    return [row["audit_id"] for row in parents]


def _event_row(audit_id: str, event: AuditEvent, pseudonymiser: Pseudonymiser, service_version: str) -> dict[str, Any]:
    return {
        "audit_id": audit_id,
        "recorded_at": event.recorded_at,
        "hook_instance": event.hook_instance,
        "service_id": event.service_id,
        "hook": event.hook,
        "service_version": service_version,
        "knowledge_version": event.knowledge_version,
        "patient_pseudonym": pseudonymiser.pseudonym(event.patient_id) if event.patient_id else None,
        "prefetch": dict(event.prefetch),
        "fhir_queries": dict(event.fhir_queries),
        "client_iss": event.client_iss,
        "client_tenant": event.client_tenant,
        "client_jti": event.client_jti,
        "latency_ms": event.latency_ms,
        "status": event.status,
        "data_quality": dict(event.data_quality),
    }


class AuditWriter:
    """An :class:`service.audit.AuditSink` that writes in the background; see the module docstring."""

    def __init__(
        self, engine: AsyncEngine, pseudonymiser: Pseudonymiser, *, queue_size: int, service_version: str
    ) -> None:
        self._engine = engine
        self._pseudonymiser = pseudonymiser
        self._queue_size = queue_size
        self._service_version = service_version
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight = 0
        #: events refused because the queue was full or the writer not running
        self.dropped = 0
        self._dropped_reported = 0
        #: events whose write failed
        self.failed = 0
        self.written = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the audit writer is already started")
        self._queue = asyncio.Queue(maxsize=self._queue_size)
        self._task = asyncio.create_task(self._run(self._queue), name="audit-writer")

    async def record(self, event: AuditEvent) -> None:
        """Enqueue ``event``; never waits, never raises (the hook must not suffer for the audit)."""
        if self._queue is None or self._closing:
            self._drop("audit event dropped: the audit writer is not running", "audit_dropped_not_running")
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._drop("audit event dropped: the audit queue is full", "audit_dropped_queue_full")

    async def flush(self, timeout: float) -> bool:
        """Wait until every event enqueued so far is written (or failed); ``False`` on timeout."""
        if self._queue is None or not self.running:
            return True
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._queue.put(barrier)
                await barrier
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then stop; counts what is left."""
        self._closing = True
        queue, task = self._queue, self._task
        if queue is None or task is None:
            return
        if not task.done():
            try:
                async with asyncio.timeout(timeout):
                    await queue.join()
            except TimeoutError:
                pass
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        unwritten = self._in_flight + sum(1 for item in _drain(queue) if isinstance(item, AuditEvent))
        self._in_flight = 0
        if unwritten:
            self.failed += unwritten
            logger.error(
                "audit writer stopped with %d events unwritten",
                unwritten,
                extra={"event": "audit_unwritten", "count": unwritten, "total": self.failed},
            )
        self._report_drops()
        logger.info(
            "audit writer stopped: %d written, %d dropped, %d failed",
            self.written,
            self.dropped,
            self.failed,
            extra={
                "event": "audit_writer_stopped",
                "written": self.written,
                "dropped": self.dropped,
                "failed": self.failed,
            },
        )

    def _drop(self, message: str, event: str) -> None:
        self.dropped += 1
        # One line at the first drop of a run; the writer logs the count once it catches up.
        if self.dropped - self._dropped_reported == 1:
            logger.warning(message, extra={"event": event, "total": self.dropped})

    def _report_drops(self) -> None:
        if self.dropped > self._dropped_reported:
            logger.warning(
                "%d audit events dropped (%d in total)",
                self.dropped - self._dropped_reported,
                self.dropped,
                extra={
                    "event": "audit_dropped",
                    "count": self.dropped - self._dropped_reported,
                    "total": self.dropped,
                },
            )
            self._dropped_reported = self.dropped

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < _BATCH_SIZE and not queue.empty():
                batch.append(queue.get_nowait())
            events = [item for item in batch if isinstance(item, AuditEvent)]
            # Left set when the task is cancelled mid-write, so that stop() counts those events.
            self._in_flight = len(events)
            try:
                if events:
                    await write_audit_events(self._engine, events, self._pseudonymiser, self._service_version)
                    self.written += len(events)
                self._in_flight = 0
            except Exception as exc:  # any failure: count it, keep the writer alive for the next batch
                self._in_flight = 0
                self.failed += len(events)
                # The engine hides statement parameters, so the trace carries no audit data.
                logger.error(
                    "audit write failed, %d events lost",
                    len(events),
                    exc_info=exc,
                    extra={"event": "audit_write_failed", "count": len(events), "total": self.failed},
                )
            finally:
                for item in batch:
                    if isinstance(item, asyncio.Future) and not item.done():
                        item.set_result(None)
                    queue.task_done()
            self._report_drops()


def _drain(queue: asyncio.Queue[_Item]) -> list[_Item]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items

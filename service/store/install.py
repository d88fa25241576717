"""The store of one application: built by :func:`open_store`, started and stopped by the lifespan.

Start-up opens the audit spool (adopting segments a previous process left), brings the
schema to head (or checks it is there) and purges what retention has expired, then
starts the audit writer and the periodic purge. A database that cannot be reached at
start-up does not stop the service: screening does not need it, the audit records wait
in the spool, and the writer does the schema step once the database answers. A schema
at the wrong revision does stop it (that is a deployment mistake, not an outage).
Shutdown gives the writer a moment to empty the spool; what is left stays on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from service import __version__
from service.audit import AuditSnapshot
from service.store.audit import AuditTrail, AuditWriter
from service.store.db import create_engine, display_url
from service.store.failures import classify
from service.store.feedback import FeedbackStore
from service.store.pseudonym import Pseudonymiser
from service.store.retention import purge_expired, purge_periodically
from service.store.schema import require_head, upgrade
from service.store.settings import StoreSettings
from service.store.spool import Spool

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["Store", "open_store"]

logger = logging.getLogger(__name__)

#: Shutdown waits this long for spooled audit records: orchestrators allow ~30 s to stop.
_AUDIT_DRAIN_S = 10.0


class Store:
    """Engine, audit spool and writer, feedback sink and retention schedule of one app."""

    def __init__(
        self,
        settings: StoreSettings,
        *,
        mode: Literal["development", "production"],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._mode = mode
        self._now = clock or (lambda: datetime.now(UTC))
        self.engine: AsyncEngine = create_engine(settings.url.get_secret_value())
        self.spool = Spool(settings.spool_folder(), fsync=settings.audit_fsync)
        self.audit = AuditTrail(
            self.spool, Pseudonymiser.from_setting(settings.pseudonym_key), service_version=__version__
        )
        self.writer: AuditWriter | None = None
        self.feedback = FeedbackStore(self.engine, settle_audit=self._settle_audit, clock=self._now)
        self._purging: asyncio.Task[None] | None = None
        self._started = False
        #: called after each round of the audit writer's work
        self.on_audit_step: Callable[[], None] | None = None

    async def start(self) -> None:
        """Open the spool, prepare the database (or leave that to the writer), start the writer."""
        where = display_url(self.engine.url)
        self.spool.open()
        deferred = None
        try:
            await self._prepare_database()
        except Exception as exc:
            if classify(exc) != "unreachable":
                self.spool.close()
                await self.engine.dispose()
                raise
            logger.error(
                "store database unreachable at start-up (%s): audit records wait in the spool",
                where,
                exc_info=exc,
                extra={"event": "store_unreachable_at_start"},
            )
            deferred = self._prepare_database
        self.writer = AuditWriter(
            self.engine,
            self.spool,
            batch_size=self._settings.audit_batch_size,
            retry_attempts=self._settings.audit_retry_attempts,
            prepare=deferred,
            on_step=self.on_audit_step,
        )
        self.writer.start()
        self._purging = asyncio.create_task(
            purge_periodically(self.engine, retention_days=self._settings.retention_days, clock=self._now),
            name="retention-purge",
        )
        self._started = True
        logger.info("store open (%s)", where, extra={"event": "store_open"})

    async def _prepare_database(self) -> None:
        if self._settings.should_migrate_on_start(self._mode):
            await upgrade(self.engine)
            logger.info("store schema migrated to head", extra={"event": "store_migrated"})
        else:
            await require_head(self.engine)
        await purge_expired(self.engine, retention_days=self._settings.retention_days, now=self._now())

    async def _settle_audit(self, timeout: float) -> bool:
        return await self.writer.flush(timeout) if self.writer is not None else True

    async def stop(self) -> None:
        if self._purging is not None:
            self._purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purging
        if self.writer is not None:
            await self.writer.stop(timeout=_AUDIT_DRAIN_S)
        self.spool.close()
        await self.engine.dispose()
        self._started = False

    def audit_snapshot(self) -> AuditSnapshot:
        """The audit trail's counters now (they keep their values after stop)."""
        if self.writer is not None:
            return self.writer.snapshot()
        return AuditSnapshot(0, 0, 0, 0, 0.0, database_reachable=False)

    async def readiness(self) -> str | None:
        """``None`` when hook calls can be audited (the spool takes records); otherwise why not."""
        if not self._started:
            return "store not open"
        if self.writer is None or not self.writer.running:
            return "audit writer stopped"
        return self.spool.writable()

    async def degradation(self) -> str | None:
        """What works less well without stopping screening: the database (feedback, audit drain)."""
        if self.writer is not None and not self.writer.database_reachable:
            return (
                "database unreachable: audit records wait in the spool "
                f"({self.spool.backlog} waiting), feedback answers 503"
            )
        return None


def open_store(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Store:
    """The store for ``settings``; no I/O until :meth:`Store.start`."""
    return Store(settings.store, mode=settings.mode, clock=clock)

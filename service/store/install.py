"""The store of one application: built by :func:`open_store`, started and stopped by the lifespan.

Start-up brings the schema to head (or checks it is there), purges what retention
has expired, then starts the audit writer and the periodic purge. Shutdown drains the
audit queue before the engine goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import __version__
from service.store.audit import AuditWriter
from service.store.db import create_engine, display_url
from service.store.feedback import FeedbackStore
from service.store.pseudonym import Pseudonymiser
from service.store.retention import purge_expired, purge_periodically
from service.store.schema import require_head, upgrade
from service.store.settings import StoreSettings

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["Store", "open_store"]

logger = logging.getLogger(__name__)

#: Shutdown waits this long for queued audit events: orchestrators allow ~30 s to stop.
_AUDIT_DRAIN_S = 10.0
#: A readiness probe must answer within the probe's own timeout (a few seconds).
_PING_TIMEOUT_S = 2.0


class Store:
    """Engine, audit writer, feedback sink and retention schedule of one app."""

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
        self.audit = AuditWriter(
            self.engine,
            Pseudonymiser.from_setting(settings.pseudonym_key),
            queue_size=settings.audit_queue_size,
            service_version=__version__,
        )
        self.feedback = FeedbackStore(self.engine, settle_audit=self.audit.flush, clock=self._now)
        self._purging: asyncio.Task[None] | None = None
        self._started = False

    async def start(self) -> None:
        """Migrate (or check) the schema, purge expired records, start the writer; raises if the store is unusable."""
        where = display_url(self.engine.url)
        try:
            if self._settings.should_migrate_on_start(self._mode):
                await upgrade(self.engine)
                logger.info("store schema migrated to head (%s)", where, extra={"event": "store_migrated"})
            else:
                await require_head(self.engine)
            await purge_expired(self.engine, retention_days=self._settings.retention_days, now=self._now())
        except BaseException:
            await self.engine.dispose()
            raise
        self.audit.start()
        self._purging = asyncio.create_task(
            purge_periodically(self.engine, retention_days=self._settings.retention_days, clock=self._now),
            name="retention-purge",
        )
        self._started = True
        logger.info("store open (%s)", where, extra={"event": "store_open"})

    async def stop(self) -> None:
        if self._purging is not None:
            self._purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purging
        await self.audit.stop(timeout=_AUDIT_DRAIN_S)
        await self.engine.dispose()
        self._started = False

    async def readiness(self) -> str | None:
        """``None`` when the store can take writes; otherwise a short reason without details."""
        if not self._started:
            return "store not open"
        if not self.audit.running:
            return "audit writer stopped"
        try:
            async with asyncio.timeout(_PING_TIMEOUT_S), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the log says which
            logger.warning("store readiness check failed", exc_info=exc, extra={"event": "store_not_ready"})
            return "database unreachable"
        return None


def open_store(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Store:
    """The store for ``settings``; no I/O until :meth:`Store.start`."""
    return Store(settings.store, mode=settings.mode, clock=clock)

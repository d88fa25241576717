"""``jti`` replay caches shared between processes: in Redis (every replica), or on the host (every worker).

Redis: one ``SET key 1 NX EX ttl`` per verified token: atomic, so two replicas receiving
the same token at once cannot both accept it, and Redis expires the key when the token
could no longer be valid anyway.

Host: the worker processes of one ``mscc-cds serve`` share a SQLite file; the primary
key makes the first insert of an id win, whichever process makes it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cds_hooks.errors import ServiceUnavailable

__all__ = ["HostReplayCache", "RedisReplayCache"]

_KEY_PREFIX = "mscc-cds:jti:"


class RedisReplayCache:
    """Implements :class:`cds_hooks.jwt.ReplayCache` on a Redis server.

    A Redis outage answers 503, not 401: the token may be fine and the client should
    retry; accepting it unchecked would open the replay window this cache closes.
    """

    def __init__(self, url: str, *, timeout_s: float = 0.5) -> None:
        # Short timeouts: the check sits inside a hook call with a ~500 ms budget.
        self._redis: Redis = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def first_use(self, key: str, ttl_s: int) -> bool:
        try:
            stored = await self._redis.set(_KEY_PREFIX + key, b"1", nx=True, ex=max(1, ttl_s))
        except (RedisError, OSError):
            raise ServiceUnavailable("The token replay check is temporarily unavailable.") from None
        return bool(stored)

    async def ping(self) -> str | None:
        """A readiness check: ``None`` when Redis answers, else a short reason."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            return f"replay cache unreachable ({type(exc).__name__})"
        return None

    async def aclose(self) -> None:
        await self._redis.aclose()


class HostReplayCache:
    """Implements :class:`cds_hooks.jwt.ReplayCache` in a SQLite file shared by the processes of one host.

    For the workers of one ``serve`` (the file lives in their private temporary folder);
    replicas on several hosts need Redis. Durability is not needed (an id only matters
    while its token is valid, and the file goes with the processes), so the journal is
    WAL without fsync: an insert costs tens of microseconds, short enough to make on the
    event loop. Concurrent writers queue on the busy timeout; a lock held longer than
    that answers 503, as an unreachable Redis does.
    """

    #: Expired ids are deleted once every this many inserts.
    PURGE_EVERY = 256

    def __init__(self, path: Path, *, timeout_s: float = 0.5, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._timeout_s = timeout_s
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        self._owner = 0
        self._inserts = 0

    def _database(self) -> sqlite3.Connection:
        # A connection must not cross a fork: each process opens its own on first use.
        if self._connection is None or self._owner != os.getpid():
            connection = sqlite3.connect(self._path, timeout=self._timeout_s, isolation_level=None)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute("CREATE TABLE IF NOT EXISTS jti (key TEXT PRIMARY KEY, expires REAL NOT NULL)")
            self._connection, self._owner = connection, os.getpid()
        return self._connection

    async def first_use(self, key: str, ttl_s: int) -> bool:
        now = self._clock()
        try:
            database = self._database()
            self._inserts += 1
            if self._inserts % self.PURGE_EVERY == 0:
                database.execute("DELETE FROM jti WHERE expires <= ?", (now,))
            # An expired row of the same id is replaced; a live one is kept and refuses the token.
            database.execute("DELETE FROM jti WHERE key = ? AND expires <= ?", (key, now))
            inserted = database.execute(
                "INSERT OR IGNORE INTO jti (key, expires) VALUES (?, ?)", (key, now + max(1, ttl_s))
            ).rowcount
        except sqlite3.Error:
            raise ServiceUnavailable("The token replay check is temporarily unavailable.") from None
        return inserted == 1

    async def aclose(self) -> None:
        if self._connection is not None and self._owner == os.getpid():
            self._connection.close()
        self._connection = None

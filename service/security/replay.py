"""A ``jti`` replay cache in Redis, shared by every replica of the service.

One ``SET key 1 NX EX ttl`` per verified token: atomic, so two replicas receiving the
same token at once cannot both accept it, and Redis expires the key when the token
could no longer be valid anyway.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cds_hooks.errors import ServiceUnavailable

__all__ = ["RedisReplayCache"]

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

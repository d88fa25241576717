"""Wire security into the app: CORS, and the client JWT verifier for the router.

``authenticate = install_security(app, settings)`` in ``create_app``; the result goes
to :func:`cds_hooks.router.build_router`. ``None`` means calls are not authenticated,
which only development mode allows (settings validation refuses it in production).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from cds_hooks.jwt import ClientTokenVerifier, InMemoryReplayCache, JwksCache, ReplayCache
from cds_hooks.router import Authenticator
from service.health import ReadinessCheck
from service.metrics import app_metrics
from service.security.cors import install_cors
from service.security.replay import HostReplayCache, RedisReplayCache
from service.security.settings import AuthSettings
from service.settings import Settings

__all__ = ["build_verifier", "install_security", "replay_cache", "replay_cache_readiness"]

logger = logging.getLogger("service.security")


def replay_cache(auth: AuthSettings, *, host_file: Path | None = None) -> ReplayCache:
    """Redis when ``replay_redis_url`` is set (shared by every replica); else the host's
    file ``host_file`` when given (shared by the worker processes); else in memory."""
    if auth.replay_redis_url is not None:
        return RedisReplayCache(auth.replay_redis_url.get_secret_value())
    if host_file is not None:
        return HostReplayCache(host_file)
    return InMemoryReplayCache()


def build_verifier(
    auth: AuthSettings, *, on_rejected: Callable[[str], None] | None = None, replay: ReplayCache | None = None
) -> ClientTokenVerifier:
    """A :class:`ClientTokenVerifier` for ``auth`` (its Redis or in-memory replay cache)."""
    replay = replay if replay is not None else replay_cache(auth)
    jwks = JwksCache(
        ttl_s=auth.jwks_cache_ttl_s,
        refresh_interval_s=auth.jwks_refresh_interval_s,
        timeout_s=auth.jwks_timeout_s,
    )
    return ClientTokenVerifier(
        [issuer.trusted_issuer() for issuer in auth.issuers],
        algorithms=auth.algorithms,
        leeway_s=auth.leeway_s,
        max_lifetime_s=auth.max_token_lifetime_s,
        replay_cache=replay,
        jwks=jwks,
        on_rejected=on_rejected,
    )


def replay_cache_readiness(app: FastAPI) -> ReadinessCheck | None:
    """The Redis replay cache's ping, when one is configured: without it no token can be accepted."""
    cache = getattr(app.state, "replay_cache", None)
    return cache.ping if isinstance(cache, RedisReplayCache) else None


def install_security(app: FastAPI, settings: Settings, *, replay_file: Path | None = None) -> Authenticator | None:
    """Add CORS to ``app`` and build its authenticator (closed when the app shuts down).

    ``replay_file``: where the worker processes of one host share their token ids (see
    :func:`replay_cache`).
    """
    development = settings.mode == "development"
    install_cors(app, settings.cors, development=development)
    if not settings.auth.active:
        if not development:  # settings validation already refuses this; never trust one layer
            raise RuntimeError("client authentication cannot be off in production")
        logger.warning(
            "CLIENT AUTHENTICATION IS OFF: any caller can invoke the service (development mode only)",
            extra={"mode": settings.mode},
        )
        return None
    app.state.replay_cache = replay_cache(settings.auth, host_file=replay_file)
    verifier = build_verifier(settings.auth, on_rejected=app_metrics(app).reject_token, replay=app.state.replay_cache)
    _close_on_shutdown(app, verifier)
    app.state.authenticator = verifier
    return verifier


def _close_on_shutdown(app: FastAPI, verifier: ClientTokenVerifier) -> None:
    # Wrap the app's own lifespan rather than edit it: the verifier's JWKS client and
    # Redis connections close after everything else has shut down.
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            await verifier.aclose()

    app.router.lifespan_context = lifespan

"""The service in process: its lifespan started and an httpx client talking to it, and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

__all__ = ["PortalClient", "SettableClock", "serve_app", "serve_app_in_portal"]


@asynccontextmanager
async def serve_app(
    app: FastAPI, base_url: str = "http://testserver", *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """``async with serve_app(app) as client``: the app started, and a client for it.

    The lifespan opens (and migrates) the store and the FHIR client; ``ASGITransport``
    alone would not run it. ``base_url`` is what the app sees as its own origin.
    """
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base_url) as client,
    ):
        yield client


class SettableClock:
    """The service clock, pinned to the scenarios' reference time until a test sets ``now``."""

    def __init__(self) -> None:
        self.now = datetime.fromisoformat("2026-06-01T10:00:00+01:00")

    def __call__(self) -> datetime:
        return self.now


class PortalClient:
    """The app started once in a portal thread, so that sync hypothesis examples can call it."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        return self._portal.call(lambda: self._client.post(url, json=body))


@contextmanager
def serve_app_in_portal(app: FastAPI) -> Iterator[PortalClient]:
    """:func:`serve_app` for sync code: one app (one lifespan) for every example; 5xx come back as responses."""
    with start_blocking_portal() as portal:
        stack = AsyncExitStack()
        async_client = portal.call(stack.enter_async_context, serve_app(app, raise_app_exceptions=False))
        try:
            yield PortalClient(portal, async_client)
        finally:
            portal.call(stack.aclose)

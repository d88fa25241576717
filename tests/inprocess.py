"""The service in process: its lifespan started and an httpx client talking to it, and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
from fastapi import FastAPI

__all__ = ["SettableClock", "serve_app"]


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

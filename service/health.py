"""Liveness and readiness probes for orchestrators (no authentication, no PHI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request

from cds_hooks.router import JSONResponse

__all__ = ["ReadinessCheck", "build_health_router"]

#: Returns ``None`` when ready, else a short reason safe to show to anyone.
ReadinessCheck = Callable[[], Awaitable[str | None]]


def build_health_router(checks: dict[str, ReadinessCheck], version: str, knowledge_version: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> JSONResponse:
        # The process answers: that is all liveness means; dependencies belong to readiness.
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        problems = {}
        for name, check in checks.items():
            reason = await check()
            if reason is not None:
                problems[name] = reason
        body = {
            "status": "ok" if not problems else "unavailable",
            "version": version,
            "knowledgeVersion": knowledge_version,
        }
        if problems:
            body["problems"] = problems  # type: ignore[assignment]
        return JSONResponse(body, status_code=200 if not problems else 503)

    return router

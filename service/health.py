"""Liveness and readiness probes for orchestrators (no authentication, no PHI).

Readiness answers one question: can this replica screen a hook call now? A failed
*check* (knowledge not loaded, audit spool not writable) makes it 503, and the
orchestrator sends calls elsewhere. A *degradation* (the database unreachable: feedback
answers 503 and audit records wait in the spool) is reported in the body with status
``degraded`` and code 200: every replica shares the database, so taking them all out of
service would stop screening, which does not need it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from starlette.requests import Request

from cds_hooks.router import JSONResponse

__all__ = ["ReadinessCheck", "build_health_router"]

#: Returns ``None`` when ready (or not degraded), else a short reason safe to show to anyone.
ReadinessCheck = Callable[[], Awaitable[str | None]]


def build_health_router(
    checks: Mapping[str, ReadinessCheck],
    version: str,
    knowledge_version: str,
    degradations: Mapping[str, ReadinessCheck] | None = None,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> JSONResponse:
        # The process answers: that is all liveness means; dependencies belong to readiness.
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        problems = await _reasons(checks)
        degraded = await _reasons(degradations or {})
        status = "unavailable" if problems else "degraded" if degraded else "ok"
        body: dict[str, object] = {"status": status, "version": version, "knowledgeVersion": knowledge_version}
        if problems:
            body["problems"] = problems
        if degraded:
            body["degraded"] = degraded
        return JSONResponse(body, status_code=503 if problems else 200)

    return router


async def _reasons(checks: Mapping[str, ReadinessCheck]) -> dict[str, str]:
    reasons = {}
    for name, check in checks.items():
        reason = await check()
        if reason is not None:
            reasons[name] = reason
    return reasons

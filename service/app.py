"""The application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from cds_hooks.body import BodyLimits
from cds_hooks.registry import ServiceRegistry
from cds_hooks.router import build_router, install_error_handlers
from service import __version__
from service.clinical.knowledge import load_knowledge_version
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.gather import PatientDataGatherer
from service.health import ReadinessCheck, build_health_router
from service.prefetch import REQUIRED_KEYS, build_prefetch_templates
from service.screening import ScreeningService
from service.settings import Settings, load_settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """Build the service for ``settings`` (read from the environment when omitted).

    ``clock`` returns the hook time (aware datetime): the rules' windows and the
    patient's age are measured from it. Tests and scenario replays pin it.
    """
    settings = settings or load_settings()
    valuesets = ValueSetLibrary.load(settings.profiles_dir / "valuesets")
    knowledge_version = load_knowledge_version(settings.profiles_dir)

    def codes_of(valueset_id: str) -> Iterable[tuple[str, str]]:
        return valuesets.get(valueset_id).codes if valueset_id in valuesets.ids else ()

    templates = build_prefetch_templates(codes_of)
    gatherer = PatientDataGatherer(
        templates, REQUIRED_KEYS, searcher=None, max_entries=settings.limits.max_prefetch_entries
    )
    screening = ScreeningService(
        templates=templates, gatherer=gatherer, screener=None, knowledge_version=knowledge_version
    )
    registry = ServiceRegistry([screening])
    checks: dict[str, ReadinessCheck] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="mscc-cds",
        version=__version__,
        summary="CDS Hooks 2.0 screening for metastatic spinal cord compression",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = registry
    install_error_handlers(app)
    limits = BodyLimits(max_bytes=settings.limits.max_body_bytes, max_depth=settings.limits.max_json_depth)
    public_base_url = str(settings.public_base_url) if settings.public_base_url else None
    app.include_router(build_router(registry, public_base_url=public_base_url, limits=limits, clock=clock))
    app.include_router(build_health_router(checks, __version__, knowledge_version))
    return app

"""The application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
from fastapi import FastAPI

from cds_hooks.body import BodyLimits
from cds_hooks.registry import ServiceRegistry
from cds_hooks.router import build_router, install_error_handlers
from service import __version__
from service.clinical.engine import ClinicalScreener
from service.clinical.knowledge import load_knowledge_version
from service.clinical.outcome import HOOKS
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.client import FhirClient, build_http_client
from service.fhir.gather import PatientDataGatherer
from service.health import ReadinessCheck, build_health_router
from service.logs import configure_logging, install_request_logging
from service.metrics import app_metrics
from service.prefetch import RECORD_PARTS, REQUIRED_KEYS, build_prefetch_templates
from service.screening import ScreeningService
from service.security.install import install_security, replay_cache_readiness
from service.settings import Settings, load_settings
from service.store.install import open_store

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
    replay_file: Path | None = None,
) -> FastAPI:
    """Build the service for ``settings`` (read from the environment when omitted).

    ``clock`` returns the hook time (aware datetime): the rules' windows and the
    patient's age are measured from it. Tests and scenario replays pin it.
    ``fhir_transport`` replaces the network under the FHIR client (tests: httpx.MockTransport).
    ``replay_file``: the SQLite file in which the worker processes of ``serve`` share the
    token ids they have seen (unless Redis is configured); without it, one process
    remembers them in memory.
    """
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    valuesets = ValueSetLibrary.load(settings.profiles_dir / "valuesets")
    knowledge_version = load_knowledge_version(settings.profiles_dir)
    templates = build_prefetch_templates(valuesets.codes_of)
    # One pooled client for every hook call's FHIR queries; closed by the lifespan.
    fhir_http = build_http_client(settings.fhir, transport=fhir_transport)
    gatherer = PatientDataGatherer(
        templates,
        REQUIRED_KEYS,
        searcher=FhirClient(fhir_http, settings.fhir, mode=settings.mode),
        parts=RECORD_PARTS,
        max_entries=settings.limits.max_prefetch_entries,
        budget_s=settings.fhir.budget_s,
    )
    # Feedback and audit trail; the database is opened (and migrated) by the lifespan.
    store = open_store(settings)
    screener = ClinicalScreener(valuesets, settings.clinical, order_actions=settings.cds.order_actions)
    registry = ServiceRegistry(
        ScreeningService(
            hook=hook,
            templates=templates,
            gatherer=gatherer,
            screener=screener,
            knowledge_version=knowledge_version,
            audit=store.audit,
            feedback_sink=store.feedback,
            allow_evaluation_time=settings.mode == "development",
        )
        for hook in HOOKS
    )

    async def knowledge_loaded() -> str | None:
        return None if valuesets.ids else "no value sets loaded"

    checks: dict[str, ReadinessCheck] = {"knowledge": knowledge_loaded, "store": store.readiness}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.start()
        try:
            yield
        finally:
            await store.stop()
            await fhir_http.aclose()

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
    limits = BodyLimits(
        max_bytes=settings.limits.max_body_bytes,
        max_depth=settings.limits.max_json_depth,
        max_containers=settings.limits.max_json_containers,
    )
    public_base_url = str(settings.public_base_url) if settings.public_base_url else None
    authenticate = install_security(app, settings, replay_file=replay_file)
    if (replay_check := replay_cache_readiness(app)) is not None:
        # Every authenticated call needs the shared replay cache: unreachable, the pod must
        # leave the Service rather than answer 503 to the EHR.
        checks["replay_cache"] = replay_check
    app.include_router(
        build_router(registry, public_base_url=public_base_url, authenticate=authenticate, limits=limits, clock=clock)
    )
    app.include_router(build_health_router(checks, __version__, knowledge_version, {"store": store.degradation}))
    app_metrics(app).watch_audit(store.audit_snapshot)
    store.on_audit_step = app_metrics(app).publish_audit
    # Added last, so outermost: it also sees CORS preflights and errors.
    install_request_logging(app)
    return app

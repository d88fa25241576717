"""The three CDS Hooks endpoints for a :class:`~cds_hooks.registry.ServiceRegistry`.

``GET /cds-services`` (discovery), ``POST /cds-services/{id}`` (invoke) and
``POST /cds-services/{id}/feedback``. Bodies are read through :mod:`cds_hooks.body`
and validated by :mod:`cds_hooks.models`; every failure is a :class:`CDSHooksError`
rendered by :func:`install_error_handlers` as an OperationOutcome.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from cds_hooks.body import BodyLimits, read_json_body
from cds_hooks.errors import CDSHooksError, MalformedRequest, operation_outcome
from cds_hooks.models import CDSRequest, DiscoveryResponse, FeedbackRequest, WireModel
from cds_hooks.registry import ClientIdentity, Invocation, ServiceRegistry

__all__ = ["Authenticator", "JSONResponse", "build_router", "install_error_handlers", "validation_details"]

logger = logging.getLogger("cds_hooks")

#: Verifies the caller for the endpoint URL given as audience; raises ``Unauthorized``.
Authenticator = Callable[[Request, str], Awaitable[ClientIdentity | None]]

_HTTP_ISSUE_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def validation_details(error: ValidationError) -> list[str]:
    """Readable one-line messages (``field.path: message``), without the input values."""
    details = []
    for problem in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in problem["loc"]) or "body"
        details.append(f"{location}: {problem['msg']}")
    return details


def _parse(model: type[WireModel], payload: Any, what: str) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise MalformedRequest(f"The body is not a valid CDS Hooks {what}.", details=validation_details(exc)) from None


def build_router(
    registry: ServiceRegistry,
    *,
    public_base_url: str | None = None,
    authenticate: Authenticator | None = None,
    limits: BodyLimits | None = None,
    clock: Callable[[], datetime] | None = None,
) -> APIRouter:
    """Routes for ``registry``.

    ``public_base_url`` is the URL clients call (behind any proxy); the JWT ``aud`` is
    checked against it, never against ``request.url``. ``clock`` stamps each invocation
    (time-zone aware); tests and replays pin it.
    """
    body_limits = limits or BodyLimits()
    now = clock or (lambda: datetime.now(UTC))
    router = APIRouter()

    def audience(request: Request, path: str) -> str:
        base = public_base_url.rstrip("/") if public_base_url else str(request.base_url).rstrip("/")
        return f"{base}{path}"

    async def identify(request: Request, path: str) -> ClientIdentity | None:
        if authenticate is None:
            return None
        return await authenticate(request, audience(request, path))

    @router.get("/cds-services", include_in_schema=True, summary="CDS Hooks discovery")
    async def discovery(request: Request) -> JSONResponse:
        await identify(request, "/cds-services")
        return JSONResponse(DiscoveryResponse(services=registry.definitions()).to_json())

    @router.post("/cds-services/{service_id}", summary="Invoke a CDS Service")
    async def invoke(service_id: str, request: Request) -> JSONResponse:
        client = await identify(request, f"/cds-services/{service_id}")
        registry.get(service_id)  # 404 before reading a possibly large body
        # Known from here on: only a registered id is ever logged, never the raw path text.
        request.state.service_id = service_id
        hook_request: CDSRequest = _parse(CDSRequest, await read_json_body(request, body_limits), "request")
        service, _ = registry.for_hook(service_id, hook_request.hook)
        invocation = Invocation(service_id=service_id, request=hook_request, client=client, received_at=now())
        request.state.invocation = invocation
        response = await service.handle(invocation)
        return JSONResponse(response.to_json())

    @router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        client = await identify(request, f"/cds-services/{service_id}/feedback")
        service = registry.get(service_id)
        request.state.service_id = service_id
        payload: FeedbackRequest = _parse(FeedbackRequest, await read_json_body(request, body_limits), "feedback")
        receipt = await service.feedback(service_id, payload, client)
        return JSONResponse(dict(receipt))

    return router


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as an OperationOutcome; nothing else ever reaches the client."""

    async def on_cds_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, CDSHooksError):  # pragma: no cover - registered for this type only
            return await on_unexpected(request, exc)
        return JSONResponse(exc.to_operation_outcome(), status_code=exc.status_code, headers=exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for this type only
            return await on_unexpected(request, exc)
        code = _HTTP_ISSUE_CODES.get(exc.status_code, "processing")
        body = operation_outcome(("error", code, str(exc.detail)))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The trace goes to the log (no request data in it); the client gets a bare 500.
        logger.error("unhandled error", exc_info=exc, extra={"event": "unhandled_error"})
        return JSONResponse(CDSHooksError().to_operation_outcome(), status_code=500)

    app.add_exception_handler(CDSHooksError, on_cds_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)

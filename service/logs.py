"""JSON log lines that can only carry allowlisted, PHI-free fields.

The allowlist is enforced in ONE place, :class:`AllowlistJsonFormatter`: whatever a
call site passes in ``extra=``, only the keys in :data:`LOG_FIELDS` with plain scalar
values reach the output. Message arguments are filled in only for the loggers in
:data:`ARGUMENT_LOGGERS` (uvicorn's "running on %s://%s:%d" then names its port); other
libraries' templates stay templates, as their arguments may carry request data. An
exception becomes its class name and the code location that raised it, never a
traceback (tracebacks render local values and request data). Request and response
bodies, prefetch, card text, tokens, JWTs, patient ids and FHIR query strings therefore
have no way into a log line.

:class:`RequestLogMiddleware` writes one line per HTTP request, with what the CDS
Service annotated on its :class:`~cds_hooks.registry.Invocation`.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.metrics import Metrics, app_metrics

__all__ = [
    "ARGUMENT_LOGGERS",
    "LOG_FIELDS",
    "AllowlistJsonFormatter",
    "RequestLogMiddleware",
    "configure_logging",
    "install_request_logging",
]

#: Every field a log line may carry (engineering.md §3.1), besides ts/level/logger/event/message.
LOG_FIELDS = frozenset(
    {
        "service_id",
        "hook",
        "hookInstance",
        "http.method",
        "http.route",
        "http.status",
        "duration_s",
        "cards",
        "rule_ids_fired",
        "prefetch_keys_missing",
        "fhir_calls",
        "notes",
        "version",
        "knowledge_version",
        "mode",
        "auth_failure",
        "error",
        "error_origin",
        "trace_id",
        "span_id",
        # store: audit queue and retention counters (numbers only)
        "count",
        "total",
        "written",
        "dropped",
        "failed",
        "purged_audit_events",
        "purged_feedback",
    }
)
#: Loggers (and their children) whose message arguments are operational values (hosts,
#: ports, process ids, migration revisions, counts, URLs with the password masked) and so
#: are filled in. Our own
#: code passes request data through ``extra=`` only, where the allowlist filters it.
ARGUMENT_LOGGERS = ("uvicorn", "alembic", "service")
# Long strings are where free text (and so PHI) would hide; ids and codes are short.
_MAX_STRING = 200
_MAX_ITEMS = 50
_MAX_EVENT = 120
_HANDLER_MARK = "_mscc_json_handler"


def _scalar(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:_MAX_STRING]
    raise TypeError


def _allowed_value(value: Any) -> Any:
    """``value`` if it is a scalar or a short list of scalars; ``TypeError`` otherwise."""
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [_scalar(item) for item in items[:_MAX_ITEMS]]
    return _scalar(value)


def _origin(tb: Any) -> str | None:
    frames = traceback.extract_tb(tb) if tb is not None else []
    if not frames:
        return None
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


class AllowlistJsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with allowlisted fields only."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": self._event(record),
        }
        fields = record.__dict__
        if fields.get("event") and record.args:
            line["message"] = _message(record)[:_MAX_STRING]
        for name in sorted(LOG_FIELDS & fields.keys()):
            try:
                line[name] = _allowed_value(fields[name])
            except TypeError:
                continue  # dicts, objects, models: never rendered
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            origin = _origin(record.exc_info[2])
            if origin:
                line["error_origin"] = origin
        return orjson.dumps(line).decode()

    @staticmethod
    def _event(record: logging.LogRecord) -> str:
        event = record.__dict__.get("event")
        if isinstance(event, str) and event:
            return event[:_MAX_EVENT]
        return _message(record)[:_MAX_EVENT]


def _message(record: logging.LogRecord) -> str:
    """The message with its arguments for :data:`ARGUMENT_LOGGERS`, else the bare template."""
    if not isinstance(record.msg, str):
        # uvicorn logs a startup OSError as the exception object itself: its text is an
        # errno and a strerror, never request data.
        return str(record.msg) if isinstance(record.msg, OSError) else type(record.msg).__name__
    if record.args and record.name.split(".", 1)[0] in ARGUMENT_LOGGERS:
        try:
            return record.getMessage()
        except (TypeError, ValueError):
            return record.msg
    return record.msg


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str = "INFO") -> logging.Handler:
    """Send every log record to stderr as allowlisted JSON; idempotent.

    Only our own handler is replaced: handlers others installed (a test runner's
    capture, for instance) stay. Uvicorn's loggers propagate to it (serve runs uvicorn
    with ``log_config=None`` and no access log: :class:`RequestLogMiddleware` writes the
    request lines).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(AllowlistJsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Their INFO lines are URL templates whose arguments we never print: pure noise.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


request_logger = logging.getLogger("service.request")


class RequestLogMiddleware:
    """One log line (and the request metrics) per HTTP request; pure ASGI."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The endpoint's request.state writes into this very dict.
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # what the client gets if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            duration = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            invocation = state.get("invocation")
            if self.metrics is not None:
                self.metrics.observe_request(route, status, duration)
                if invocation is not None:
                    self.metrics.observe_invocation(invocation.service_id, invocation.annotations)
                    self.metrics.publish_audit()
            fields: dict[str, Any] = {
                "event": "request",
                "http.method": scope.get("method"),
                "http.route": route,
                "http.status": status,
                "duration_s": round(duration, 6),
                "version": __version__,
            }
            fields.update(_invocation_fields(scope, state))
            level = logging.ERROR if status >= 500 else logging.INFO
            request_logger.log(level, "request", extra=fields)


def _invocation_fields(scope: Scope, state: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    # Set by the router once the id is found in the registry: a path that names no service
    # is client text of any length and content, and is never logged.
    if isinstance(state.get("service_id"), str):
        fields["service_id"] = state["service_id"]
    invocation = state.get("invocation")
    if invocation is not None:
        fields["service_id"] = invocation.service_id
        fields["hook"] = invocation.request.hook
        fields["hookInstance"] = invocation.request.hookInstance
        # The service decides what to annotate; the formatter decides what is printed.
        fields.update({key: value for key, value in invocation.annotations.items() if key in LOG_FIELDS})
    if isinstance(state.get("auth_failure"), str):
        fields["auth_failure"] = state["auth_failure"]
    return fields


def install_request_logging(app: FastAPI) -> None:
    """Add :class:`RequestLogMiddleware` as the outermost user middleware of ``app``."""
    app.add_middleware(RequestLogMiddleware, metrics=app_metrics(app))

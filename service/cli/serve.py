"""``mscc-cds serve``: run the service with uvicorn."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import TYPE_CHECKING, Any

from service.cli.configuration import load_cli_settings
from service.cli.exitcodes import FAILURE, OK
from service.errors import MsccError

if TYPE_CHECKING:
    import socket
    from pathlib import Path

    from service.settings import Settings

__all__ = ["EXIT_CODES", "HELP", "add_arguments", "bind", "freeze_startup_heap", "run"]

#: Young-generation collections between two full ones (Python's default: 10).
_FULL_COLLECTION_EVERY = 1000

HELP = "Run the CDS Hooks service (settings from MSCC_* environment variables and /run/secrets files)."
EXIT_CODES = {0: "stopped cleanly (SIGINT/SIGTERM)", 1: "could not start: port in use, profiles unreadable, ..."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default: MSCC_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: MSCC_PORT or 8080)")


def freeze_startup_heap() -> int:
    """Exempt the objects built so far from every later collection; returns how many there are.

    What startup builds (the FHIR models and their validators, the value sets: some
    160,000 objects) lives as long as the process, yet each full collection walked all of
    it: 78 ms on our machine, a pause that the hook call running at that moment waited
    for, and one that evicted the CPU caches. Frozen, they are skipped: a full collection
    right after startup then took 0.0 ms, and later ones walk only what was built since.
    Garbage from startup is collected first, so none is kept for good (a frozen object is
    still freed when its last reference goes; only a cycle among them would stay).

    Then full collections become a hundred times rarer (after 1,000 young-generation
    collections instead of 10): with the heap frozen, Python's own brake on them (a full
    collection waits until the objects that survived the young ones are a quarter of
    the long-lived heap) has nothing to weigh, so a 10,000-resource call, which builds a
    million objects while it is parsed and screened, met one every 70,000 allocations,
    each walking the whole parse tree built so far. Parse trees hold no cycles: they are
    freed by reference counting when the call ends; the rarer full collections still
    reclaim what cycles other code leaves. bench/http.py, 10,000 resources: CPU per call
    1.64x the floor before, 1.35x after.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_COLLECTION_EVERY)
    return gc.get_freeze_count()


class PortInUse(MsccError):
    """A port the service needs is taken; the message says which and what to do."""


def bind(host: str, port: int, *, setting: str) -> socket.socket:
    """A listening socket on ``host:port``, or :class:`PortInUse` naming ``setting``.

    Binding before uvicorn starts turns "address already in use" into one line for the
    operator (uvicorn would log an OSError and exit 3), and leaves no window in which
    another process could take the port between the check and the start.
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use (another mscc-cds?); stop that process "
                f"or choose another port with {setting}"
            ) from None
        raise PortInUse(f"cannot listen on {host}:{port} ({exc.strerror}); check {setting}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    overrides = {name: value for name, value in (("host", args.host), ("port", args.port)) if value is not None}
    settings = load_cli_settings(**overrides)
    try:
        if settings.metrics_port is not None:
            # Only a check: prometheus_client binds the port itself once the app is built.
            bind(settings.host, settings.metrics_port, setting="MSCC_METRICS_PORT").close()
        sock = bind(settings.host, settings.port, setting="--port or MSCC_PORT")
    except PortInUse as exc:
        print(f"mscc-cds serve: {exc}", file=sys.stderr)
        return FAILURE
    try:
        return _serve(settings, sock)
    finally:
        sock.close()  # uvicorn closes it on shutdown; this covers a failed start


def _serve(settings: Settings, sock: socket.socket) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from service.cli.workers import available_cores

    workers = settings.workers or available_cores()
    if workers == 1:
        return _serve_alone(settings, sock)
    # What the workers share on this host: the token ids they have seen and their metrics.
    shared = Path(tempfile.mkdtemp(prefix="mscc-cds-workers-"))
    try:
        return _serve_group(settings, sock, workers, shared)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _serve_alone(settings: Settings, sock: socket.socket) -> int:
    from prometheus_client import start_http_server

    from service.app import create_app
    from service.metrics import app_metrics

    app = create_app(settings)
    if settings.metrics_port is not None:
        # prometheus_client serves the scrape endpoint from its own thread and port.
        start_http_server(settings.metrics_port, addr=settings.host, registry=app_metrics(app).registry)
    freeze_startup_heap()
    _announce(settings, workers=1)
    _server(app, settings).run(sockets=[sock])
    return OK


def _serve_group(settings: Settings, sock: socket.socket, workers: int, shared: Path) -> int:
    from prometheus_client import multiprocess, start_http_server

    from service.app import create_app
    from service.cli.workers import WorkerGroup
    from service.metrics import multiprocess_registry, share_between_processes

    metrics_dir = shared / "metrics"
    metrics_dir.mkdir()
    share_between_processes(metrics_dir)
    app = create_app(settings, replay_file=shared / "jti.sqlite3")
    freeze_startup_heap()
    _announce(settings, workers=workers)

    def serve() -> None:
        # The audit figures reach the supervisor's scrape endpoint through files: each
        # worker copies its own after each hook call and each round of its audit writer.
        _server(app, settings).run(sockets=[sock])

    def scrape_endpoint() -> None:
        # The supervisor answers scrapes, every worker's series combined. Its thread starts
        # once the first workers are forked: a fork copies no thread but the caller.
        if settings.metrics_port is not None:
            start_http_server(settings.metrics_port, addr=settings.host, registry=multiprocess_registry(metrics_dir))

    group = WorkerGroup(
        workers,
        serve,
        on_exit=lambda pid: multiprocess.mark_process_dead(pid, str(metrics_dir)),  # type: ignore[no-untyped-call]
        on_started=scrape_endpoint,
    )
    return group.run()


def _announce(settings: Settings, *, workers: int) -> None:
    import logging

    logging.getLogger("service.serve").info(
        "mscc-cds listening on %s://%s:%d (%d worker process%s, metrics port %s)",
        "http",
        settings.host,
        settings.port,
        workers,
        "" if workers == 1 else "es",
        settings.metrics_port or "off",
        extra={"event": "serving"},
    )


def _server(app: Any, settings: Settings) -> Any:
    """The uvicorn server of one worker; access logs come from our own middleware."""
    import uvicorn

    # No reload watcher (uvicorn[standard]'s watchfiles is not installed): code never changes
    # under a running service. Proxy headers are believed from forwarded_allow_ips only.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # SIGTERM: stop accepting, finish the calls in flight (Kubernetes' preStop has
        # already taken the pod out of the Service), then exit within the grace period.
        timeout_graceful_shutdown=20,
    )
    return uvicorn.Server(config)

"""``mscc-cds serve``: run the service with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from service.cli.exitcodes import OK
from service.settings import load_settings

__all__ = ["HELP", "add_arguments", "run"]

HELP = "Run the CDS Hooks service (settings from MSCC_* environment variables)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default: MSCC_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: MSCC_PORT or 8080)")


def run(args: argparse.Namespace) -> int:
    overrides = {name: value for name in ("host", "port") if (value := getattr(args, name)) is not None}
    settings = load_settings(**overrides)
    from service.app import create_app

    # One worker per process: scale with replicas; access logs come from our own middleware.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
    )
    return OK

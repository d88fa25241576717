"""CORS for browser-based CDS Clients (the CDS Hooks sandbox, SMART-launched apps).

Browsers preflight every call, because ``Authorization`` is not a "simple" header:
the preflight must admit ``Authorization`` and ``Content-Type`` and the three methods
the protocol uses. No cookies are involved (the JWT travels in a header), so
credentials stay off.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from service.security.settings import CorsSettings

__all__ = ["ALLOWED_HEADERS", "ALLOWED_METHODS", "DEVELOPMENT_ORIGIN_REGEX", "install_cors"]

ALLOWED_METHODS = ("GET", "POST", "OPTIONS")
ALLOWED_HEADERS = ("Authorization", "Content-Type")
#: A developer's own browser client on any local port (matched against the whole Origin).
DEVELOPMENT_ORIGIN_REGEX = r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?"


def install_cors(app: FastAPI, cors: CorsSettings, *, development: bool) -> bool:
    """Add the CORS middleware when any origin is admitted; whether it was added."""
    origin_regex = DEVELOPMENT_ORIGIN_REGEX if development else None
    if not cors.allow_origins and origin_regex is None:
        return False
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors.allow_origins),
        allow_origin_regex=origin_regex,
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        allow_credentials=False,
        max_age=cors.max_age_s,
    )
    return True

"""Where the client's access token may go: the fhirServer allowlist and same-origin URLs.

A hook request names its own ``fhirServer`` and hands us a bearer token for it. Calling
whatever URL a request names would let anyone who can reach the service make it send
requests (SSRF) and, worse, send the EHR's token to a host of their choosing. So:

* ``fhirServer`` must match an allowlist entry: the same origin (scheme, host, port) and
  a path at or under the entry's path (segment-wise: ``/fhir`` admits ``/fhir/r4``, never
  ``/fhir-evil``);
* plain ``http`` is accepted only in development mode;
* in development mode an empty allowlist admits loopback servers only, so a local
  walkthrough works and nothing else can be reached; production with an empty list
  refuses every fallback query;
* every URL we then request (a rendered query or a Bundle's ``next`` link) must stay on
  the fhirServer's origin and under its path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import httpx

from service.errors import MsccError

__all__ = ["FhirBase", "ServerRefused", "is_loopback_host", "normalize_server_url", "resolve_fhir_base"]

Mode = Literal["development", "production"]
# a scheme at the very start: "Observation?code=http://loinc.org|1" is still relative
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = tuple(_DEFAULT_PORTS)


class ServerRefused(MsccError, ValueError):
    """The URL may not be called with a client's token; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class FhirBase:
    """A fhirServer that passed the allowlist: the only place its token may be sent."""

    scheme: str
    host: str
    port: int | None
    #: path without a trailing slash ("" for a server at the root)
    path: str

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return (self.scheme, self.host, self.port)

    @property
    def url(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}{self.path}"

    def admits_path(self, path: str) -> bool:
        """``path`` is this base's path or lies under it (whole segments only)."""
        return _under(path, self.path)

    def resolve(self, query_or_url: str) -> httpx.URL:
        """The absolute URL of a rendered query (``Type?...``) or a ``next`` link.

        Raises :class:`ServerRefused` when the result leaves this base: another origin,
        another path, user info, or dot segments that a server might resolve upwards.
        """
        if _ABSOLUTE.match(query_or_url):
            url = _parse(query_or_url)
        else:
            url = _parse(f"{self.url}/{query_or_url.lstrip('/')}")
        if (url.scheme, url.host, _port(url)) != self.origin:
            raise ServerRefused("URL outside the fhirServer origin refused")
        if url.userinfo:
            raise ServerRefused("URL with user info refused")
        if ".." in url.path.split("/") or not self.admits_path(url.path):
            raise ServerRefused("URL outside the fhirServer base path refused")
        return url.copy_with(fragment=None)


def _parse(raw: str) -> httpx.URL:
    try:
        return httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ServerRefused("not a valid URL") from None


def _port(url: httpx.URL) -> int | None:
    # httpx lower-cases scheme and host, but keeps an explicit default port: drop it so
    # that https://h:443/ and https://h/ are the same origin
    return None if url.port == _DEFAULT_PORTS.get(url.scheme) else url.port


def _under(path: str, prefix: str) -> bool:
    path = path.rstrip("/")
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _base_of(raw: str) -> FhirBase:
    url = _parse(raw.strip())
    if url.scheme not in _SCHEMES or not url.host:
        raise ServerRefused("fhirServer must be an http(s) URL with a host")
    if url.userinfo or url.query or url.fragment:
        raise ServerRefused("fhirServer must not carry user info, a query or a fragment")
    if ".." in url.path.split("/"):
        raise ServerRefused("fhirServer path must not contain dot segments")
    return FhirBase(scheme=url.scheme, host=url.host, port=_port(url), path=url.path.rstrip("/"))


def normalize_server_url(raw: str) -> str:
    """An allowlist entry in canonical form; raises :class:`ServerRefused` if unusable."""
    return _base_of(raw).url


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_fhir_base(fhir_server: str, allowed_servers: Iterable[str], mode: Mode) -> FhirBase:
    """The request's fhirServer, if it may receive the client's token; else :class:`ServerRefused`."""
    base = _base_of(fhir_server)
    if base.scheme != "https" and mode != "development":
        raise ServerRefused("fhirServer must use https")
    allowed = [_base_of(entry) for entry in allowed_servers]
    if not allowed:
        if mode == "development" and is_loopback_host(base.host):
            return base
        raise ServerRefused("fhirServer not on the allowlist")
    for entry in allowed:
        if entry.origin == base.origin and _under(base.path, entry.path):
            return base
    raise ServerRefused("fhirServer not on the allowlist")

"""The fallback FHIR client: runs prefetch queries against the client's own FHIR server.

One :class:`httpx.AsyncClient` serves every hook call (connection pool, keep-alive);
:class:`FhirClient` adds what the hook needs on top of it:

* the fhirServer allowlist and same-origin rule of :mod:`service.fhir.origin`, checked
  for every URL before the bearer token is attached (redirects are never followed: a
  3xx could point anywhere);
* at most ``max_connections_per_server`` requests in flight per server: EHR FHIR
  endpoints are busy and the pool alone caps only the total;
* Bundle paging through ``link[next]`` up to ``max_pages`` (what those pages held is
  kept when there are more: :class:`FhirFetchError` ``partial``);
* the hook's time budget (:mod:`service.fhir.budget`) over pages and the one retry
  :mod:`service.fhir.retry` allows, with each request also capped by
  ``request_timeout_s``;
* every failure as a :class:`FhirFetchError` whose reason names the kind of failure
  only: never a URL (it holds the patient id), a body or the token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import orjson

from service import __version__
from service.fhir.budget import current_deadline, remaining_s
from service.fhir.bundle import bundle_resources, next_link
from service.fhir.gather import BUDGET_EXCEEDED, FhirFetchError
from service.fhir.origin import FhirBase, Mode, ServerRefused, resolve_fhir_base
from service.fhir.record import Resource
from service.fhir.retry import retry_pause
from service.fhir.settings import FhirSettings

__all__ = ["FhirClient", "build_http_client", "status_reason"]

logger = logging.getLogger("service.fhir")

_ACCEPT = "application/fhir+json"


def build_http_client(
    settings: FhirSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The one pooled HTTP client for FHIR I/O; close it when the application stops."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        timeout=httpx.Timeout(settings.request_timeout_s),
        follow_redirects=False,
        # The pool is shared by every client and user: a cookie one EHR sets must never
        # ride along on a request made for someone else, so no cookie is ever kept.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": f"mscc-cds/{__version__}", "Accept": _ACCEPT},
        transport=transport,
    )


def status_reason(status: int) -> str:
    """A safe, short description of a non-success HTTP status from the FHIR server."""
    if 300 <= status < 400:
        return f"FHIR server answered with a redirect ({status}), not followed"
    known = {
        401: "FHIR server refused the access token (401)",
        403: "FHIR server denied access (403)",
        404: "not found on the FHIR server (404)",
        429: "FHIR server rate limit (429)",
    }
    if status in known:
        return known[status]
    if status >= 500:
        return f"FHIR server error ({status})"
    return f"FHIR server rejected the query ({status})"


class FhirClient:
    """:class:`~service.fhir.gather.FhirSearcher` over a shared :class:`httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, settings: FhirSettings, *, mode: Mode) -> None:
        self._http = http
        self._settings = settings
        self._mode = mode
        # Allowed origins are few (the allowlist, or loopback in development), so this stays small.
        self._slots: dict[tuple[str, str, int | None], asyncio.Semaphore] = {}

    async def fetch(self, base_url: str, query: str, access_token: str | None) -> list[Resource]:
        try:
            base = resolve_fhir_base(base_url, self._settings.allowed_servers, self._mode)
            url = base.resolve(query)
        except ServerRefused as exc:
            raise FhirFetchError(str(exc)) from None
        read_type = _read_type(base, url)
        deadline = current_deadline()
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self._settings.budget_s
        try:
            async with asyncio.timeout_at(deadline):
                if read_type is not None:
                    return [await self._read(base, url, read_type, access_token, deadline)]
                return await self._search(base, url, access_token, deadline)
        except TimeoutError:
            raise FhirFetchError(BUDGET_EXCEEDED) from None

    async def _read(
        self, base: FhirBase, url: httpx.URL, resource_type: str, token: str | None, deadline: float
    ) -> Resource:
        resource = await self._get(base, url, token, deadline)
        if resource.get("resourceType") != resource_type:
            raise FhirFetchError(f"FHIR server sent {_kind(resource)} for a {resource_type} read")
        return resource

    async def _search(self, base: FhirBase, url: httpx.URL, token: str | None, deadline: float) -> list[Resource]:
        resources: list[Resource] = []
        seen = {str(url)}
        for _page in range(self._settings.max_pages):
            bundle = await self._get(base, url, token, deadline)
            if bundle.get("resourceType") != "Bundle":
                raise FhirFetchError(f"FHIR server sent {_kind(bundle)} instead of a search Bundle")
            resources.extend(bundle_resources(bundle))
            link = next_link(bundle)
            if link is None:
                return resources
            try:
                url = base.resolve(link)
            except ServerRefused as exc:
                raise FhirFetchError(f"next page link refused: {exc}") from None
            if str(url) in seen:
                raise FhirFetchError("next page link points back to a page already read")
            seen.add(str(url))
        # A record longer than the cap is screened as far as it was read (the gatherer
        # marks it partial and the cards say so): the first pages hold the newest results.
        raise FhirFetchError(
            f"search results span more than {self._settings.max_pages} pages; only the first were read",
            partial=resources,
        )

    async def _get(self, base: FhirBase, url: httpx.URL, token: str | None, deadline: float) -> dict[str, Any]:
        """One GET, retried at most once on 429/503; the parsed JSON object it returned."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        retries = 0
        while True:
            timeout = min(self._settings.request_timeout_s, remaining_s(deadline))
            if timeout <= 0:
                raise FhirFetchError(BUDGET_EXCEEDED)
            status, body, retry_after = await self._exchange(base, url, headers, timeout)
            if 200 <= status < 300:
                return _parse_body(body)
            pause = retry_pause(status, retry_after, retries, remaining_s(deadline))
            reason = status_reason(status)
            if pause is None:
                if status in (429, 503) and retries == 0:
                    reason += "; a retry would not fit the time budget"
                logger.debug("FHIR request failed", extra={"event": "fhir_request_failed", "error": reason})
                raise FhirFetchError(reason, status=status)
            logger.debug("FHIR request retried", extra={"event": "fhir_request_retry", "error": reason})
            retries += 1
            await asyncio.sleep(pause)

    async def _exchange(
        self, base: FhirBase, url: httpx.URL, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes, str | None]:
        try:
            async with (
                self._slot(base),
                self._http.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=False) as response,
            ):
                if not 200 <= response.status_code < 300:
                    return response.status_code, b"", response.headers.get("Retry-After")
                return response.status_code, await self._read_body(response), None
        except httpx.TimeoutException:
            raise FhirFetchError("FHIR server did not answer in time") from None
        except httpx.HTTPError as exc:
            # The exception text may quote the URL: only its class name is safe to keep.
            raise FhirFetchError(f"FHIR server unreachable ({type(exc).__name__})") from None

    async def _read_body(self, response: httpx.Response) -> bytes:
        limit = self._settings.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise FhirFetchError("FHIR server response too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FhirFetchError("FHIR server response too large")
            chunks.append(chunk)
        return b"".join(chunks)

    @asynccontextmanager
    async def _slot(self, base: FhirBase) -> AsyncIterator[None]:
        semaphore = self._slots.get(base.origin)
        if semaphore is None:
            semaphore = self._slots[base.origin] = asyncio.Semaphore(self._settings.max_connections_per_server)
        async with semaphore:
            yield


def _read_type(base: FhirBase, url: httpx.URL) -> str | None:
    """The resource type when ``url`` is an instance read (``Type/id``), else ``None``."""
    if url.query:
        return None
    segments = [segment for segment in url.path[len(base.path) :].split("/") if segment]
    if len(segments) == 2 and segments[0][:1].isupper():
        return segments[0]
    return None


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FhirFetchError("FHIR server sent a body that is not JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise FhirFetchError("FHIR server sent JSON that is not a FHIR resource")
    if value["resourceType"] == "OperationOutcome":
        raise FhirFetchError("FHIR server answered with an OperationOutcome")
    return value


def _kind(resource: dict[str, Any]) -> str:
    kind = resource.get("resourceType")
    # a resourceType is [A-Z][A-Za-z]+ in FHIR; anything else is not echoed back
    return f"a {kind}" if isinstance(kind, str) and kind.isalpha() and len(kind) <= 64 else "an unexpected resource"

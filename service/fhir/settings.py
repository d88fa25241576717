"""How the service talks to an EHR's FHIR server when prefetch is missing."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["FhirSettings"]


class FhirSettings(BaseModel):
    """Fallback FHIR access: which servers, how long, how much."""

    #: FHIR base URLs (scheme://host[:port][/path]) the service may call with a client's
    #: token. Anything else is refused: the token must never reach another origin.
    allowed_servers: list[str] = Field(default_factory=list)
    #: One HTTP request to the FHIR server; the spec's ~500 ms target for the whole hook
    #: leaves about half of it for FHIR I/O.
    request_timeout_s: float = Field(default=0.25, gt=0)
    #: All FHIR I/O of one hook call, pages and retries included.
    budget_s: float = Field(default=0.35, gt=0)
    #: Pages followed through Bundle.link "next" per query.
    max_pages: int = Field(default=10, ge=1)
    #: Connections per FHIR server: EHRs tend to be very busy (cumulus-fhir-support).
    max_connections_per_server: int = Field(default=5, ge=1)

"""How the service talks to an EHR's FHIR server when prefetch is missing."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from service.fhir.origin import ServerRefused, normalize_server_url

__all__ = ["FhirSettings"]


class FhirSettings(BaseModel):
    """Fallback FHIR access: which servers, how long, how much."""

    #: FHIR base URLs (JSON list) the service may call with a client's token: same origin,
    #: path at or under the entry. Anything else is refused: the token must never reach another
    #: origin. Empty: development allows loopback servers only, production none.
    allowed_servers: list[str] = Field(default_factory=list)
    #: One HTTP request to the FHIR server; the spec's ~500 ms target for the whole hook
    #: leaves about half of it for FHIR I/O.
    request_timeout_s: float = Field(default=0.25, gt=0)
    #: All FHIR I/O of one hook call, pages and retries included (a request never outlives it).
    budget_s: float = Field(default=0.35, gt=0)
    #: Pages followed through Bundle.link "next" per query.
    max_pages: int = Field(default=10, ge=1)
    #: Connections per FHIR server: EHRs tend to be very busy (cumulus-fhir-support).
    max_connections_per_server: int = Field(default=5, ge=1)
    #: Connections of the whole pool, across all servers (keep-alive ones included).
    max_connections: int = Field(default=100, ge=1)
    #: One response body; 16 MiB holds a 1,000-entry page of large resources.
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    @field_validator("allowed_servers")
    @classmethod
    def _canonical_servers(cls, servers: list[str]) -> list[str]:
        try:
            return [normalize_server_url(server) for server in servers]
        except ServerRefused as exc:
            raise ValueError(f"allowed_servers: {exc}") from None

    def production_problems(self) -> list[str]:
        """Why these settings are unsafe in production mode (empty when they are fine)."""
        return [
            f"MSCC_FHIR__ALLOWED_SERVERS: entry {server} is not https"
            for server in self.allowed_servers
            if not server.startswith("https://")
        ]

"""Security settings: trusted CDS Clients (JWT issuers) and browser origins (CORS).

Issuers come as JSON in ``MSCC_AUTH__ISSUERS``, for instance::

    [{"issuer": "https://ehr.example.org",
      "jku": ["https://ehr.example.org/.well-known/jwks.json"],
      "tenants": ["hospital-a"]},
     {"issuer": "https://other.example.org", "jwks_file": "/run/secrets/other-jwks.json"}]

Production mode refuses to start on an insecure combination; see
:func:`security_production_problems`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from cds_hooks.jwt import ASYMMETRIC_ALGORITHMS, RECOMMENDED_ALGORITHMS, JwkSet, JwkSetFile, TrustedIssuer

__all__ = ["AuthSettings", "CorsSettings", "TrustedIssuerSettings", "security_production_problems"]


def _check_http_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise ValueError(f"{what} must be an absolute http(s) URL without fragment")
    return url


class TrustedIssuerSettings(BaseModel):
    """One CDS Client we accept tokens from, and where its public keys are."""

    model_config = ConfigDict(extra="forbid")

    #: The token's ``iss``, compared exactly.
    issuer: str = Field(min_length=1)
    #: The issuer's JWK Set inline (a JSON object with ``keys``), exchanged out of band:
    #: it verifies the issuer's tokens whatever ``jku`` header they carry.
    jwks: dict[str, Any] | None = None
    #: ... or a file holding it (a mounted secret or config map), re-read when it changes.
    jwks_file: Path | None = None
    #: JWK Set URLs this issuer may name in a token's ``jku`` header, fetched only for a
    #: ``kid`` the pinned keys lack; also where keys are fetched for tokens without
    #: ``jku``. Compared exactly, never followed elsewhere.
    jku: list[str] = Field(default_factory=list)
    #: Accepted ``tenant`` claims; unset accepts any (or none).
    tenants: list[str] | None = Field(default=None, min_length=1)

    @field_validator("jku")
    @classmethod
    def _jku_are_urls(cls, urls: list[str]) -> list[str]:
        return [_check_http_url(url, "a jku URL") for url in urls]

    @model_validator(mode="after")
    def _has_one_key_source(self) -> Self:
        if self.jwks is not None and self.jwks_file is not None:
            raise ValueError(f"issuer {self.issuer!r}: give jwks or jwks_file, not both")
        if self.jwks is None and self.jwks_file is None and not self.jku:
            raise ValueError(f"issuer {self.issuer!r}: needs jwks, jwks_file or jku URLs")
        # Parse now: a broken key set must stop the service at start, not at the first call.
        self.key_set()
        return self

    def key_set(self) -> JwkSet | JwkSetFile | None:
        """The out-of-band JWK Set, if one is configured; ``ValueError`` if it is unusable."""
        if self.jwks_file is not None:
            try:
                return JwkSetFile(self.jwks_file)
            except ValueError as exc:
                raise ValueError(f"issuer {self.issuer!r}: {exc}") from exc
        if self.jwks is None:
            return None
        keys = JwkSet.from_json(self.jwks)
        if not keys:
            raise ValueError(f"issuer {self.issuer!r}: the JWK Set holds no usable public signing key")
        return keys

    def trusted_issuer(self) -> TrustedIssuer:
        return TrustedIssuer(
            issuer=self.issuer,
            keys=self.key_set(),
            jku=frozenset(self.jku),
            tenants=frozenset(self.tenants) if self.tenants is not None else None,
        )


class AuthSettings(BaseModel):
    """Client JWT verification (CDS Hooks 2.0 "Trusting CDS Clients")."""

    #: ``None`` (default): on as soon as an issuer is configured. ``false`` turns it off,
    #: which only development mode accepts (and warns about at start).
    enabled: bool | None = None
    #: Trusted CDS Clients, as JSON: ``[{"issuer": "https://ehr.example.org", "jku":
    #: ["https://ehr.example.org/jwks.json"]}]``; per issuer its JWK Set as ``jwks`` (inline),
    #: ``jwks_file`` (a path) or allowed ``jku`` URLs, and optionally allowed ``tenants``.
    issuers: list[TrustedIssuerSettings] = Field(default_factory=list)
    #: Accepted signature algorithms: the spec's RECOMMENDED pair by default; other
    #: asymmetric ones by choice. ``none`` and HS* are refused here.
    algorithms: list[str] = Field(default_factory=lambda: list(RECOMMENDED_ALGORITHMS), min_length=1)
    #: Clock skew tolerated on ``exp``/``iat``: Inferno's CDS Hooks test kit uses 60 s.
    leeway_s: int = Field(default=60, ge=0, le=300)
    #: Longest ``exp - iat`` accepted; best practice is "no more than an hour", and each
    #: ``jti`` is remembered that long.
    max_token_lifetime_s: int = Field(default=3600, ge=60, le=24 * 3600)
    #: Redis for the ``jti`` replay cache, shared by all replicas (redis://, rediss://).
    #: Unset: an in-memory cache, right for a single replica only.
    replay_redis_url: SecretStr | None = None
    #: How long a fetched JWK Set is reused before it is fetched again.
    jwks_cache_ttl_s: float = Field(default=300, gt=0)
    #: An unknown ``kid`` refetches a JWK Set at most this often (per URL).
    jwks_refresh_interval_s: float = Field(default=30, ge=1)
    #: Timeout of one JWK Set fetch (made only on a cache miss or an unknown ``kid``).
    jwks_timeout_s: float = Field(default=2.0, gt=0, le=30)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(f"only asymmetric signature algorithms are allowed, not {refused}")
        return algorithms

    @field_validator("replay_redis_url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and urlsplit(url.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("replay_redis_url must be a redis://, rediss:// or unix:// URL")
        return url

    @model_validator(mode="after")
    def _issuers_consistent(self) -> Self:
        names = [issuer.issuer for issuer in self.issuers]
        if len(set(names)) != len(names):
            raise ValueError("each trusted issuer may be configured once")
        if self.enabled and not self.issuers:
            raise ValueError("authentication is enabled but no trusted issuer is configured")
        return self

    @property
    def active(self) -> bool:
        """Whether calls must carry a valid client JWT."""
        return self.enabled if self.enabled is not None else bool(self.issuers)


class CorsSettings(BaseModel):
    """Origins of browser-based CDS Clients (the CDS Hooks sandbox is one)."""

    #: Exact origins (``https://sandbox.cds-hooks.org``); development mode also admits
    #: ``http://localhost:*`` and ``http://127.0.0.1:*``.
    allow_origins: list[str] = Field(default_factory=list)
    #: Browsers preflight every call (the Authorization header is not "simple"): caching
    #: the preflight spares one round trip per hook call.
    max_age_s: int = Field(default=600, ge=0, le=86400)

    @field_validator("allow_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            # A browser's Origin header is scheme://host[:port]; anything more never matches.
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path or trailing slash)")
        return origins


def security_production_problems(
    auth: AuthSettings, cors: CorsSettings, *, public_base_url: AnyHttpUrl | None
) -> list[str]:
    """Every insecure setting production mode must refuse (empty when they are fine)."""
    problems = []
    if auth.enabled is False:
        problems.append("MSCC_AUTH__ENABLED: client authentication cannot be turned off in production")
    if not auth.issuers:
        problems.append("MSCC_AUTH__ISSUERS: production needs at least one trusted JWT issuer")
    if any(urlsplit(url).scheme != "https" for issuer in auth.issuers for url in issuer.jku):
        problems.append("MSCC_AUTH__ISSUERS: jku URLs must use https in production")
    if public_base_url is None:
        # Without it the audience would come from the request's Host header.
        problems.append("MSCC_PUBLIC_BASE_URL: production needs the https URL clients call (the JWT audience)")
    elif public_base_url.scheme != "https":
        problems.append("MSCC_PUBLIC_BASE_URL: must be https in production")
    if "*" in cors.allow_origins:
        problems.append("MSCC_CORS__ALLOW_ORIGINS: origin '*' is not allowed in production")
    if any(origin.startswith("http://") for origin in cors.allow_origins):
        problems.append("MSCC_CORS__ALLOW_ORIGINS: origins must be https in production")
    return problems

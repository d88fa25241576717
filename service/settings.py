"""Service settings: environment variables with the ``MSCC_`` prefix, or /run/secrets files.

Nested groups use ``__``: ``MSCC_FHIR__BUDGET_S=0.4``, ``MSCC_CLINICAL__CANCER_SCOPE=any``.
Priority: constructor arguments, environment, files in /run/secrets named like the
variables (``/run/secrets/MSCC_STORE__PSEUDONYM_KEY``), defaults. Nothing reads the
environment at import time: :func:`load_settings` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AnyHttpUrl, BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.clinical.policy import ClinicalPolicy
from service.clinical.suggestions import CardSettings
from service.fhir.settings import FhirSettings
from service.paths import DEFAULT_PROFILES_DIR
from service.secret_files import SecretFilesSource
from service.security.settings import AuthSettings, CorsSettings, security_production_problems
from service.store.settings import StoreSettings

__all__ = ["DEFAULT_PROFILES_DIR", "LimitSettings", "Mode", "Settings", "load_settings"]

Mode = Literal["development", "production"]
_SECRETS_DIR = Path("/run/secrets")


class LimitSettings(BaseModel):
    """Caps on what one request may cost us."""

    #: 16 MiB holds a 10,000-resource prefetch with room to spare.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: FHIR nests about 10 levels inside a Bundle; 64 refuses pathological documents.
    max_json_depth: int = Field(default=64, ge=8)
    #: JSON objects and arrays in one body; a 10,000-resource prefetch holds about
    #: 300,000, and the cap keeps a hostile body from costing seconds of parsing.
    max_json_containers: int = Field(default=1_000_000, ge=1000)
    #: Resources accepted across all prefetch Bundles of one request.
    max_prefetch_entries: int = Field(default=20_000, ge=1)


class Settings(BaseSettings):
    """Everything a deployment can configure."""

    model_config = SettingsConfigDict(
        env_prefix="MSCC_",
        env_nested_delimiter="__",
        extra="ignore",
        secrets_dir=_SECRETS_DIR if _SECRETS_DIR.is_dir() else None,
    )

    #: ``production`` refuses insecure combinations (plain-http FHIR servers, no JWT issuers).
    mode: Mode = "development"
    #: Interface to listen on; a container sets 0.0.0.0.
    host: str = "127.0.0.1"
    #: TCP port of the CDS Hooks API and the health probes.
    port: int = Field(default=8080, ge=1, le=65535)
    #: The URL clients call (e.g. https://cds.example.org), behind any proxy. JWT ``aud``
    #: is checked against it; in development the request's own URL is used when unset.
    public_base_url: AnyHttpUrl | None = None
    #: Reverse proxies (IP addresses or CIDR ranges, JSON list) whose X-Forwarded-For and
    #: X-Forwarded-Proto headers are believed: the Ingress controller's pod network, for
    #: instance ``["10.0.0.0/8"]``. Headers from any other peer are ignored.
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1"], min_length=1)
    #: HTTP worker processes of `mscc-cds serve`; 0: one per CPU core the process may use (its
    #: affinity, capped by a container's CPU limit). Several workers share one port, the
    #: token replay cache (a host file, or Redis when configured) and the metrics endpoint.
    workers: int = Field(default=0, ge=0, le=64)
    #: Port of a separate Prometheus scrape endpoint (/metrics), kept off the EHR-facing
    #: port so that only the monitoring network reaches it; unset: no endpoint.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Folder with valuesets/, plandefinitions/ and manifest.json.
    profiles_dir: Path = DEFAULT_PROFILES_DIR
    #: Level of the JSON log lines on stderr.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    limits: LimitSettings = Field(default_factory=LimitSettings)
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    clinical: ClinicalPolicy = Field(default_factory=ClinicalPolicy)
    cds: CardSettings = Field(default_factory=CardSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Files named like the variables (/run/secrets/MSCC_STORE__URL) rank just below the
        # environment; pydantic's own per-field secret files (mscc_store as JSON) below them.
        secret_files = SecretFilesSource(settings_cls, _SECRETS_DIR)
        return init_settings, env_settings, dotenv_settings, secret_files, file_secret_settings

    @model_validator(mode="after")
    def _production_is_safe(self) -> Self:
        # One validator gathers every group's objections, so an operator sees all of
        # them at once instead of fixing one start-up failure at a time.
        if self.mode != "production":
            return self
        problems = [
            *security_production_problems(self.auth, self.cors, public_base_url=self.public_base_url),
            *self.fhir.production_problems(),
            *self.store.production_problems(),
        ]
        if problems:
            # The list travels in the error's context, so the command line can print one
            # line per problem (service.cli.configuration).
            raise PydanticCustomError(
                "production_refused",
                "production mode refuses: {summary}",
                {"summary": "; ".join(problems), "problems": problems},
            )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and secrets), with explicit overrides on top."""
    return Settings(**overrides)

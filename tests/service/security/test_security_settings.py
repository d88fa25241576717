"""Security settings: issuers from the environment, refused algorithms, and what production demands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import AnyHttpUrl, ValidationError

from cds_hooks.jwt import JwkSetFile
from service.security.install import build_verifier
from service.security.settings import (
    AuthSettings,
    CorsSettings,
    TrustedIssuerSettings,
    security_production_problems,
)
from service.settings import Settings

ISSUER = "https://ehr.example.org"
JKU = "https://ehr.example.org/.well-known/jwks.json"


def test_issuers_come_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch, client_jwks: dict[str, Any]
) -> None:
    issuers = [
        {"issuer": ISSUER, "jku": [JKU], "tenants": ["hospital-a"]},
        {"issuer": "https://other.example.org", "jwks": client_jwks},
    ]
    monkeypatch.setenv("MSCC_AUTH__ISSUERS", json.dumps(issuers))
    monkeypatch.setenv("MSCC_AUTH__LEEWAY_S", "30")
    monkeypatch.setenv("MSCC_CORS__ALLOW_ORIGINS", '["https://sandbox.cds-hooks.org"]')
    settings = Settings()
    assert settings.auth.active
    assert [issuer.issuer for issuer in settings.auth.issuers] == [ISSUER, "https://other.example.org"]
    assert settings.auth.leeway_s == 30
    assert settings.cors.allow_origins == ["https://sandbox.cds-hooks.org"]
    trusted = settings.auth.issuers[0].trusted_issuer()
    assert trusted.jku == frozenset({JKU}) and trusted.tenants == frozenset({"hospital-a"}) and trusted.keys is None
    assert settings.auth.issuers[1].trusted_issuer().keys is not None


def test_jwks_from_a_file(tmp_path: Path, client_jwks: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(client_jwks), encoding="utf-8")
    issuer = TrustedIssuerSettings(issuer=ISSUER, jwks_file=path)
    keys = issuer.trusted_issuer().keys
    assert isinstance(keys, JwkSetFile) and keys.current().kids == {"client-key-1"}


def test_an_unreadable_or_empty_key_set_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read a JWK Set"):
        TrustedIssuerSettings(issuer=ISSUER, jwks_file=tmp_path / "missing.json")
    with pytest.raises(ValidationError, match="no usable public signing key"):
        TrustedIssuerSettings(issuer=ISSUER, jwks={"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]})


def test_an_issuer_needs_exactly_one_way_to_its_keys(client_jwks: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs jwks, jwks_file or jku"):
        TrustedIssuerSettings(issuer=ISSUER)
    with pytest.raises(ValidationError, match="not both"):
        TrustedIssuerSettings(issuer=ISSUER, jwks=client_jwks, jwks_file=tmp_path / "jwks.json")
    with pytest.raises(ValidationError, match="jku URL"):
        TrustedIssuerSettings(issuer=ISSUER, jku=["ftp://ehr.example.org/jwks"])


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "none", "None"])
def test_symmetric_algorithms_and_none_cannot_be_allowed(algorithm: str) -> None:
    with pytest.raises(ValidationError, match="asymmetric"):
        AuthSettings(algorithms=["ES384", algorithm], issuers=[TrustedIssuerSettings(issuer=ISSUER, jku=[JKU])])


def test_other_asymmetric_algorithms_may_be_allowed() -> None:
    auth = AuthSettings(
        algorithms=["ES384", "RS384", "PS384"], issuers=[TrustedIssuerSettings(issuer=ISSUER, jku=[JKU])]
    )
    assert auth.algorithms == ["ES384", "RS384", "PS384"]


def test_an_issuer_is_configured_once() -> None:
    issuer = TrustedIssuerSettings(issuer=ISSUER, jku=[JKU])
    with pytest.raises(ValidationError, match="once"):
        AuthSettings(issuers=[issuer, issuer])


def test_auth_is_active_when_issuers_exist_unless_turned_off() -> None:
    issuer = TrustedIssuerSettings(issuer=ISSUER, jku=[JKU])
    assert not AuthSettings().active
    assert AuthSettings(issuers=[issuer]).active
    assert not AuthSettings(issuers=[issuer], enabled=False).active


@pytest.mark.parametrize("origin", ["https://sandbox.cds-hooks.org/", "sandbox.cds-hooks.org", "https://x.org/path"])
def test_cors_origins_are_bare_origins(origin: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        CorsSettings(allow_origins=[origin])


def test_redis_url_must_be_redis() -> None:
    with pytest.raises(ValidationError, match="redis"):
        AuthSettings(replay_redis_url="http://cache:6379")
    assert AuthSettings(replay_redis_url="rediss://:secret@cache:6380/0").replay_redis_url is not None


def test_redis_password_is_not_in_the_repr() -> None:
    auth = AuthSettings(replay_redis_url="redis://:hunter2secret@cache:6379/0")
    assert "hunter2secret" not in repr(auth)


def test_build_verifier_uses_every_setting(client_jwks: dict[str, Any]) -> None:
    auth = AuthSettings(issuers=[TrustedIssuerSettings(issuer=ISSUER, jwks=client_jwks)])
    verifier = build_verifier(auth)
    assert verifier.issuers == {ISSUER}


# -- production -------------------------------------------------------------------------


def secure_production(client_jwks: dict[str, Any]) -> tuple[AuthSettings, CorsSettings, AnyHttpUrl]:
    auth = AuthSettings(issuers=[TrustedIssuerSettings(issuer=ISSUER, jwks=client_jwks, jku=[JKU])])
    cors = CorsSettings(allow_origins=["https://sandbox.cds-hooks.org"])
    return auth, cors, AnyHttpUrl("https://cds.example.org")


def test_a_secure_production_configuration_has_no_problems(client_jwks: dict[str, Any]) -> None:
    auth, cors, url = secure_production(client_jwks)
    assert security_production_problems(auth, cors, public_base_url=url) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"auth": AuthSettings()}, "at least one trusted JWT issuer"),
        ({"auth_enabled": False}, "cannot be turned off"),
        ({"jku": "http://ehr.example.org/jwks.json"}, "jku URLs must use https"),
        ({"url": None}, "MSCC_PUBLIC_BASE_URL"),
        ({"url": AnyHttpUrl("http://cds.example.org")}, "must be https"),
        ({"cors": CorsSettings(allow_origins=["*"])}, "'*' is not allowed"),
        (
            {"cors": CorsSettings(allow_origins=["http://ehr.example.org"])},
            "MSCC_CORS__ALLOW_ORIGINS: origins must be https",
        ),
    ],
)
def test_each_insecure_production_setting_is_named(
    client_jwks: dict[str, Any], change: dict[str, Any], problem: str
) -> None:
    auth, cors, url = secure_production(client_jwks)
    if "auth" in change:
        auth = change["auth"]
    if "auth_enabled" in change:
        auth = auth.model_copy(update={"enabled": False})
    if "jku" in change:
        auth = AuthSettings(issuers=[TrustedIssuerSettings(issuer=ISSUER, jku=[change["jku"]])])
    if "url" in change:
        url = change["url"]
    cors = change.get("cors", cors)
    problems = security_production_problems(auth, cors, public_base_url=url)
    assert len(problems) == 1 and problem in problems[0]


def test_production_settings_refuse_to_load_without_an_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSCC_MODE", "production")
    monkeypatch.setenv("MSCC_PUBLIC_BASE_URL", "https://cds.example.org")
    # Everything else production needs is there, so the missing issuer is the one problem.
    monkeypatch.setenv("MSCC_FHIR__ALLOWED_SERVERS", '["https://fhir.example.org/R4"]')
    monkeypatch.setenv("MSCC_STORE__PSEUDONYM_KEY", "0" * 64)
    with pytest.raises(ValidationError, match="at least one trusted JWT issuer"):
        Settings()


def test_development_settings_load_without_an_issuer() -> None:
    assert Settings(mode="development").auth.active is False

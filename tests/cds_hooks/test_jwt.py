"""Client JWT verification: every check of cds_hooks.jwt, with real keys and a real JWKS server.

JWK Sets named by ``jku`` are served from a loopback HTTP server in a thread, so the
fetch path (httpx, no redirects, size cap) is the production one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.requests import Request

from cds_hooks.errors import Unauthorized
from cds_hooks.jwt import (
    ClientTokenVerifier,
    InMemoryReplayCache,
    JwksCache,
    JwkSet,
    JwkSetFile,
    TokenRejection,
    TrustedIssuer,
)

ISSUER = "https://ehr.example.org"
AUDIENCE = "https://cds.example.org/cds-services/mscc-patient-view"


# -- keys and tokens --------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        codec = ECAlgorithm if self.algorithm.startswith("ES") else RSAAlgorithm
        public = codec.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


def _ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


def _rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def es_key() -> SigningKey:
    return _ec_key("ec-1")


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return _rsa_key("rsa-1")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def mint(key: SigningKey, payload: dict[str, Any] | None = None, **header: Any) -> str:
    headers: dict[str, Any] = {"kid": key.kid, "typ": "JWT", **header}
    headers = {name: value for name, value in headers.items() if value is not None}
    return jwt.encode(
        payload if payload is not None else claims(), key.private, algorithm=key.algorithm, headers=headers
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    return head + "." + _b64(signature)


def jwks_of(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


# -- a loopback JWKS server -------------------------------------------------------------


@dataclass
class JwksServer:
    """JSON documents by path, served over HTTP on 127.0.0.1; counts the GETs per path."""

    documents: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    base_url: str = ""

    def publish(self, path: str, document: Any, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.documents[path] = (status, json.dumps(document).encode(), headers or {})
        return self.base_url + path

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            status, body, headers = state.documents.get(self.path, (404, b"{}", {}))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier_for(*issuers: TrustedIssuer, **options: Any) -> ClientTokenVerifier:
    return ClientTokenVerifier(issuers, **options)


def fetching_verifier(jku: str, **options: Any) -> AbstractAsyncContextManager[ClientTokenVerifier]:
    """A verifier that fetches the issuer's keys from ``jku``; its HTTP client is closed on exit."""
    return aclosing(verifier_for(TrustedIssuer(ISSUER, jku=frozenset({jku})), **options))


async def rejection(verifier: ClientTokenVerifier, token: str, audience: str = AUDIENCE) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token, audience)
    return caught.value.reason


# -- accepted tokens --------------------------------------------------------------------


@pytest.mark.anyio
async def test_valid_es384_token_with_inline_jwks(es_key: SigningKey) -> None:
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key))))
    payload = claims(tenant="hospital-a")
    identity = await verifier.verify(mint(es_key, payload), AUDIENCE)
    assert identity.issuer == ISSUER
    assert identity.jti == payload["jti"]
    assert identity.tenant == "hospital-a"
    assert identity.expires_at is not None and int(identity.expires_at.timestamp()) == payload["exp"]


@pytest.mark.anyio
async def test_valid_rs384_token_with_allowlisted_jku(rs_key: SigningKey, jwks_server: JwksServer) -> None:
    jku = jwks_server.publish("/jwks.json", jwks_of(rs_key))
    async with fetching_verifier(jku) as verifier:
        identity = await verifier.verify(mint(rs_key, jku=jku), AUDIENCE)
        assert identity.issuer == ISSUER and identity.tenant is None
        # Without a jku header the issuer's allowlisted URLs are where its keys are looked up.
        await verifier.verify(mint(rs_key), AUDIENCE)
        assert jwks_server.hits["/jwks.json"] == 1


@pytest.mark.anyio
async def test_aud_may_be_an_array_holding_the_endpoint(es_key: SigningKey) -> None:
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key))))
    token = mint(es_key, claims(aud=["https://other.example.org", AUDIENCE]))
    assert (await verifier.verify(token, AUDIENCE)).issuer == ISSUER


@pytest.mark.anyio
async def test_expiry_within_the_leeway_is_accepted(es_key: SigningKey) -> None:
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key))), leeway_s=60)
    now = int(time.time())
    await verifier.verify(mint(es_key, claims(iat=now - 100, exp=now - 30)), AUDIENCE)


# -- refused tokens ---------------------------------------------------------------------


@pytest.fixture
def es_verifier(es_key: SigningKey) -> ClientTokenVerifier:
    return verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key))))


@pytest.mark.anyio
async def test_bad_signature(es_verifier: ClientTokenVerifier) -> None:
    impostor = _ec_key("ec-1")  # same kid, another private key
    assert await rejection(es_verifier, mint(impostor)) == TokenRejection.BAD_SIGNATURE


@pytest.mark.anyio
async def test_tampered_payload_fails_the_signature(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    header, _, signature = mint(es_key).split(".")
    forged = _b64(json.dumps(claims(tenant="someone-else")).encode())
    assert await rejection(es_verifier, f"{header}.{forged}.{signature}") == TokenRejection.BAD_SIGNATURE


@pytest.mark.anyio
async def test_alg_none_is_refused(es_verifier: ClientTokenVerifier) -> None:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims())
    assert await rejection(es_verifier, token) == TokenRejection.ALG_NOT_ALLOWED


@pytest.mark.anyio
async def test_hs384_signed_with_the_public_key_is_refused(rs_key: SigningKey) -> None:
    # Algorithm confusion: a verifier that fed the RSA public key to HMAC would accept this.
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(rs_key))))
    header = {"alg": "HS384", "typ": "JWT", "kid": rs_key.kid}
    signing_input = unsigned(header, claims()).rsplit(".", 1)[0].encode()
    signature = hmac.new(rs_key.public_pem(), signing_input, hashlib.sha384).digest()
    token = signing_input.decode() + "." + _b64(signature)
    assert await rejection(verifier, token) == TokenRejection.ALG_NOT_ALLOWED


@pytest.mark.anyio
async def test_an_algorithm_outside_the_allowlist_is_refused(es_key: SigningKey) -> None:
    es256 = SigningKey("ec-256", "ES256", ec.generate_private_key(ec.SECP256R1()))
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key, es256))))
    assert await rejection(verifier, mint(es256)) == TokenRejection.ALG_NOT_ALLOWED
    # ... unless the deployment chose to allow it.
    widened = verifier_for(
        TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key, es256))), algorithms=("ES384", "ES256")
    )
    assert (await widened.verify(mint(es256), AUDIENCE)).issuer == ISSUER


@pytest.mark.parametrize("algorithms", [("HS384",), ("none",), ("ES384", "HS256"), ()])
def test_symmetric_or_none_algorithms_cannot_be_configured(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        ClientTokenVerifier([], algorithms=algorithms)


@pytest.mark.anyio
async def test_key_of_another_type_than_alg_is_refused(es_key: SigningKey, rs_key: SigningKey) -> None:
    # An RS384 header naming the EC key's kid: the key cannot serve that algorithm.
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key))))
    token = jwt.encode(claims(), rs_key.private, algorithm="RS384", headers={"kid": es_key.kid, "typ": "JWT"})
    assert await rejection(verifier, token) == TokenRejection.KEY_MISMATCH


@pytest.mark.anyio
async def test_expired(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    now = int(time.time())
    token = mint(es_key, claims(iat=now - 600, exp=now - 120))
    assert await rejection(es_verifier, token) == TokenRejection.EXPIRED


@pytest.mark.anyio
async def test_iat_in_the_future(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    now = int(time.time())
    token = mint(es_key, claims(iat=now + 300, exp=now + 600))
    assert await rejection(es_verifier, token) == TokenRejection.NOT_YET_VALID


@pytest.mark.anyio
async def test_lifetime_longer_than_allowed(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    now = int(time.time())
    token = mint(es_key, claims(iat=now, exp=now + 2 * 3600))
    assert await rejection(es_verifier, token) == TokenRejection.LIFETIME_TOO_LONG


@pytest.mark.anyio
async def test_wrong_audience(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    token = mint(es_key, claims(aud="https://cds.example.org/cds-services"))
    assert await rejection(es_verifier, token) == TokenRejection.WRONG_AUDIENCE


@pytest.mark.anyio
async def test_unknown_issuer(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    token = mint(es_key, claims(iss="https://attacker.example.org"))
    assert await rejection(es_verifier, token) == TokenRejection.ISS_NOT_ALLOWED


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ("iss", TokenRejection.MISSING_ISS),
        ("aud", TokenRejection.MISSING_AUD),
        ("exp", TokenRejection.MISSING_EXP),
        ("iat", TokenRejection.MISSING_IAT),
        ("jti", TokenRejection.MISSING_JTI),
    ],
)
@pytest.mark.anyio
async def test_each_required_claim(
    es_verifier: ClientTokenVerifier, es_key: SigningKey, claim: str, reason: TokenRejection
) -> None:
    payload = claims()
    del payload[claim]
    assert await rejection(es_verifier, mint(es_key, payload)) == reason


@pytest.mark.anyio
async def test_empty_jti_counts_as_missing(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    assert await rejection(es_verifier, mint(es_key, claims(jti=""))) == TokenRejection.MISSING_JTI


@pytest.mark.anyio
async def test_no_sub_claim_is_needed(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    payload = claims()
    assert "sub" not in payload
    await es_verifier.verify(mint(es_key, payload), AUDIENCE)


@pytest.mark.anyio
async def test_header_needs_kid_and_typ_jwt(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    no_kid = jwt.encode(claims(), es_key.private, algorithm="ES384", headers={"typ": "JWT"})
    assert await rejection(es_verifier, no_kid) == TokenRejection.MISSING_KID
    wrong_typ = mint(es_key, typ="at+jwt")
    assert await rejection(es_verifier, wrong_typ) == TokenRejection.BAD_TYP
    no_typ = jwt.encode(claims(), es_key.private, algorithm="ES384", headers={"kid": es_key.kid, "typ": None})
    assert await rejection(es_verifier, no_typ) == TokenRejection.BAD_TYP


@pytest.mark.anyio
async def test_replayed_jti(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    payload = claims()
    await es_verifier.verify(mint(es_key, payload), AUDIENCE)
    # The same jti again, even in a freshly signed token with another audience claim order.
    again = mint(es_key, {**payload, "aud": [AUDIENCE]})
    assert await rejection(es_verifier, again) == TokenRejection.REPLAYED_JTI


@pytest.mark.anyio
async def test_a_refused_token_does_not_use_up_its_jti(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    payload = claims()
    assert await rejection(es_verifier, mint(es_key, payload), AUDIENCE + "x") == TokenRejection.WRONG_AUDIENCE
    await es_verifier.verify(mint(es_key, payload), AUDIENCE)


@pytest.mark.anyio
async def test_tenant_allowlist(es_key: SigningKey) -> None:
    keys = JwkSet.from_json(jwks_of(es_key))
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=keys, tenants=frozenset({"hospital-a"})))
    assert (await verifier.verify(mint(es_key, claims(tenant="hospital-a")), AUDIENCE)).tenant == "hospital-a"
    assert await rejection(verifier, mint(es_key, claims(tenant="hospital-b"))) == TokenRejection.TENANT_NOT_ALLOWED
    assert await rejection(verifier, mint(es_key, claims())) == TokenRejection.TENANT_NOT_ALLOWED


# -- jku and the JWKS cache -------------------------------------------------------------


@pytest.mark.anyio
async def test_jku_not_on_the_allowlist_is_never_fetched(es_key: SigningKey, jwks_server: JwksServer) -> None:
    allowed = jwks_server.publish("/allowed.json", jwks_of(es_key))
    rogue = jwks_server.publish("/rogue.json", jwks_of(es_key))
    async with fetching_verifier(allowed) as verifier:
        assert await rejection(verifier, mint(es_key, jku=rogue)) == TokenRejection.JKU_NOT_ALLOWED
        assert jwks_server.hits.get("/rogue.json", 0) == 0


# -- keys pinned out of band, with and without jku ------------------------------------
#
# An issuer configured with its JWK Set (inline or a file) is verified against those keys
# whatever jku its tokens carry; a jku is fetched only for a kid the pinned keys lack, and
# only when it is on the issuer's allowlist. Each row: where the token's key is, what jku
# header it carries, whether that jku is allowlisted and answering, and the outcome.

PINNED_CASES = {
    # pinned kid: accepted, and nothing is fetched, whatever the jku says
    "pinned, no jku": ("pinned", None, False, True, None),
    "pinned, jku off the allowlist": ("pinned", "/rogue.json", False, True, None),
    "pinned, allowlisted jku down": ("pinned", "/jwks.json", True, False, None),
    "pinned, allowlisted jku up": ("pinned", "/jwks.json", True, True, None),
    # a kid only the jku knows: fetched only from an allowlisted, reachable jku
    "jku key, allowlisted jku up": ("published", "/jwks.json", True, True, None),
    "jku key, allowlisted jku down": ("published", "/jwks.json", True, False, TokenRejection.UNKNOWN_KID),
    "jku key, jku off the allowlist": ("published", "/rogue.json", False, True, TokenRejection.UNKNOWN_KID),
    "jku key, no jku header, allowlist up": ("published", None, True, True, None),
    # a kid nobody knows
    "unknown kid, no jku": ("nowhere", None, False, True, TokenRejection.UNKNOWN_KID),
    "unknown kid, allowlisted jku up": ("nowhere", "/jwks.json", True, True, TokenRejection.UNKNOWN_KID),
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("where", "jku_path", "allowlisted", "reachable", "refused"), PINNED_CASES.values(), ids=list(PINNED_CASES)
)
async def test_pinned_keys_with_and_without_jku(
    es_key: SigningKey,
    jwks_server: JwksServer,
    where: str,
    jku_path: str | None,
    allowlisted: bool,
    reachable: bool,
    refused: TokenRejection | None,
) -> None:
    published = _ec_key("published-1")
    signer = {"pinned": es_key, "published": published, "nowhere": _ec_key("stranger-1")}[where]
    for path in ("/jwks.json", "/rogue.json"):
        jwks_server.publish(
            path, jwks_of(published) if reachable else {"error": "down"}, status=200 if reachable else 503
        )
    allowed = frozenset({jwks_server.url("/jwks.json")}) if allowlisted else frozenset()
    issuer = TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key)), jku=allowed)
    token = mint(signer, jku=jwks_server.url(jku_path) if jku_path else None)
    async with aclosing(verifier_for(issuer)) as verifier:
        if refused is None:
            assert (await verifier.verify(token, AUDIENCE)).issuer == ISSUER
        else:
            assert await rejection(verifier, token) == refused
    assert jwks_server.hits.get("/rogue.json", 0) == 0  # never fetched: not on the allowlist
    if where == "pinned":
        assert jwks_server.hits == {}  # pinned keys need no fetch at all


@pytest.mark.anyio
async def test_a_pinned_key_file_is_reread_when_it_changes(es_key: SigningKey, tmp_path: Path) -> None:
    path = tmp_path / "ehr-jwks.json"
    path.write_text(json.dumps(jwks_of(es_key)), encoding="utf-8")
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSetFile(path)))
    assert (await verifier.verify(mint(es_key), AUDIENCE)).issuer == ISSUER
    rotated = _ec_key("ec-rotated")
    assert await rejection(verifier, mint(rotated)) == TokenRejection.UNKNOWN_KID

    # The hospital replaces the file (as Kubernetes swaps a mounted secret): the new key is
    # taken, the old one is gone, from the next token on and without a restart.
    replacement = tmp_path / "ehr-jwks.json.new"
    replacement.write_text(json.dumps(jwks_of(rotated)), encoding="utf-8")
    replacement.replace(path)
    assert (await verifier.verify(mint(rotated), AUDIENCE)).issuer == ISSUER
    assert await rejection(verifier, mint(es_key)) == TokenRejection.UNKNOWN_KID

    # A half-written or emptied file keeps the keys read before.
    path.write_text('{"keys": [', encoding="utf-8")
    assert (await verifier.verify(mint(rotated), AUDIENCE)).issuer == ISSUER
    path.unlink()
    assert (await verifier.verify(mint(rotated), AUDIENCE)).issuer == ISSUER


def test_a_pinned_key_file_must_be_usable_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read a JWK Set"):
        JwkSetFile(tmp_path / "missing.json")
    empty = tmp_path / "empty.json"
    empty.write_text('{"keys": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="no usable public signing key"):
        JwkSetFile(empty)


@pytest.mark.anyio
async def test_unknown_kid_refreshes_once_then_waits(es_key: SigningKey, jwks_server: JwksServer) -> None:
    clock = FakeClock()
    jku = jwks_server.publish("/jwks.json", jwks_of(es_key))
    cache = JwksCache(clock=clock, refresh_interval_s=30, ttl_s=300)
    async with fetching_verifier(jku, jwks=cache) as verifier:
        await verifier.verify(mint(es_key, jku=jku), AUDIENCE)
        assert jwks_server.hits["/jwks.json"] == 1

        clock.now += 31
        stranger = _ec_key("unknown-1")
        assert await rejection(verifier, mint(stranger, jku=jku)) == TokenRejection.UNKNOWN_KID
        assert jwks_server.hits["/jwks.json"] == 2  # exactly one refresh

        clock.now += 5
        other_stranger = _ec_key("unknown-2")
        assert await rejection(verifier, mint(other_stranger, jku=jku)) == TokenRejection.UNKNOWN_KID
        assert jwks_server.hits["/jwks.json"] == 2  # within 30 s: no refetch

        # Known keys keep working meanwhile, from the cache.
        await verifier.verify(mint(es_key, jku=jku), AUDIENCE)
        assert jwks_server.hits["/jwks.json"] == 2


@pytest.mark.anyio
async def test_concurrent_unknown_kids_share_one_fetch(jwks_server: JwksServer, es_key: SigningKey) -> None:
    jku = jwks_server.publish("/jwks.json", jwks_of(es_key))
    async with fetching_verifier(jku, jwks=JwksCache(clock=FakeClock())) as verifier:
        tokens = [mint(_ec_key(f"made-up-{index}"), jku=jku) for index in range(5)]
        results = await asyncio.gather(*(verifier.verify(token, AUDIENCE) for token in tokens), return_exceptions=True)
        assert all(isinstance(result, Unauthorized) for result in results)
        assert {result.reason for result in results if isinstance(result, Unauthorized)} == {"unknown_kid"}
        assert jwks_server.hits["/jwks.json"] == 1


@pytest.mark.anyio
async def test_key_rotation_is_picked_up_after_the_refresh_interval(
    es_key: SigningKey, jwks_server: JwksServer
) -> None:
    clock = FakeClock()
    jku = jwks_server.publish("/jwks.json", jwks_of(es_key))
    async with fetching_verifier(jku, jwks=JwksCache(clock=clock)) as verifier:
        await verifier.verify(mint(es_key), AUDIENCE)
        rotated = _ec_key("ec-2")
        jwks_server.publish("/jwks.json", jwks_of(es_key, rotated))
        assert await rejection(verifier, mint(rotated)) == TokenRejection.UNKNOWN_KID  # fetched < 30 s ago
        clock.now += 30
        assert (await verifier.verify(mint(rotated), AUDIENCE)).issuer == ISSUER
        assert jwks_server.hits["/jwks.json"] == 2


@pytest.mark.anyio
async def test_stale_set_is_refetched_after_its_ttl(es_key: SigningKey, jwks_server: JwksServer) -> None:
    clock = FakeClock()
    jku = jwks_server.publish("/jwks.json", jwks_of(es_key))
    async with fetching_verifier(jku, jwks=JwksCache(clock=clock, ttl_s=300)) as verifier:
        await verifier.verify(mint(es_key), AUDIENCE)
        clock.now += 301
        await verifier.verify(mint(es_key), AUDIENCE)
        assert jwks_server.hits["/jwks.json"] == 2


@pytest.mark.anyio
async def test_unreachable_jwks(es_key: SigningKey, jwks_server: JwksServer) -> None:
    jku = jwks_server.publish("/broken.json", {"error": "down"}, status=500)
    async with fetching_verifier(jku) as verifier:
        assert await rejection(verifier, mint(es_key, jku=jku)) == TokenRejection.JWKS_UNAVAILABLE


@pytest.mark.anyio
async def test_a_failed_refresh_keeps_the_known_keys(es_key: SigningKey, jwks_server: JwksServer) -> None:
    clock = FakeClock()
    jku = jwks_server.publish("/jwks.json", jwks_of(es_key))
    async with fetching_verifier(jku, jwks=JwksCache(clock=clock, ttl_s=60)) as verifier:
        await verifier.verify(mint(es_key), AUDIENCE)
        jwks_server.publish("/jwks.json", {}, status=503)
        clock.now += 61
        assert (await verifier.verify(mint(es_key), AUDIENCE)).issuer == ISSUER
        assert jwks_server.hits["/jwks.json"] == 2


@pytest.mark.anyio
async def test_redirects_from_the_jku_are_not_followed(es_key: SigningKey, jwks_server: JwksServer) -> None:
    target = jwks_server.publish("/elsewhere.json", jwks_of(es_key))
    jku = jwks_server.publish("/jwks.json", {}, status=302, headers={"Location": target})
    async with fetching_verifier(jku) as verifier:
        assert await rejection(verifier, mint(es_key, jku=jku)) == TokenRejection.JWKS_UNAVAILABLE
        assert jwks_server.hits.get("/elsewhere.json", 0) == 0


@pytest.mark.anyio
async def test_oversized_jwks_is_refused(es_key: SigningKey, jwks_server: JwksServer) -> None:
    padding = [{"kty": "oct", "kid": f"pad-{index}", "k": "x" * 64} for index in range(100)]
    jku = jwks_server.publish("/big.json", {"keys": [es_key.jwk(), *padding]})
    async with fetching_verifier(jku, jwks=JwksCache(max_bytes=4096)) as verifier:
        assert await rejection(verifier, mint(es_key, jku=jku)) == TokenRejection.JWKS_UNAVAILABLE


def test_jwk_set_keeps_only_public_signing_keys(es_key: SigningKey, rs_key: SigningKey) -> None:
    private = {**ECAlgorithm.to_jwk(es_key.private, as_dict=True), "kid": "leaked"}
    document = {
        "keys": [
            es_key.jwk(),
            {**rs_key.jwk(), "kid": "enc-key", "use": "enc"},
            {**rs_key.jwk(), "kid": "wrap-only", "key_ops": ["wrapKey"]},
            {"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"},
            {**rs_key.jwk(), "kid": "twice"},
            {**es_key.jwk(), "kid": "twice"},
            private,
            {**rs_key.jwk(), "kid": ""},
            "not a key",
        ]
    }
    assert JwkSet.from_json(document).kids == {"ec-1"}


@pytest.mark.parametrize("document", [[], {"keys": {}}, {"kid": "x"}, "keys"])
def test_jwk_set_needs_a_keys_array(document: Any) -> None:
    with pytest.raises(ValueError, match="keys"):
        JwkSet.from_json(document)


def test_jwk_bound_to_another_algorithm_is_refused(es_key: SigningKey) -> None:
    keys = JwkSet.from_json(jwks_of(es_key))
    assert keys.verification_key("ec-1", "ES384") is not None
    with pytest.raises(ValueError, match="another algorithm"):
        keys.verification_key("ec-1", "ES256")


def test_trusted_issuer_needs_a_key_source() -> None:
    with pytest.raises(ValueError, match="JWK Set or allowed jku"):
        TrustedIssuer(ISSUER)


def test_duplicate_issuers_are_refused(es_key: SigningKey) -> None:
    issuer = TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key)))
    with pytest.raises(ValueError, match="twice"):
        ClientTokenVerifier([issuer, issuer])


# -- the replay cache -------------------------------------------------------------------


@pytest.mark.anyio
async def test_in_memory_replay_cache_forgets_after_the_ttl() -> None:
    clock = FakeClock()
    cache = InMemoryReplayCache(clock=clock)
    assert await cache.first_use("a", 60)
    assert not await cache.first_use("a", 60)
    clock.now += 59
    assert not await cache.first_use("a", 60)
    assert await cache.first_use("b", 10)
    clock.now += 2  # "a" has expired, "b" has not
    assert await cache.first_use("a", 60)
    assert not await cache.first_use("b", 10)
    assert len(cache) == 2


# -- as the router's Authenticator ------------------------------------------------------


def request_with(*authorization: str) -> Request:
    headers = [(b"authorization", value.encode("latin-1")) for value in authorization]
    return Request({"type": "http", "method": "GET", "path": "/cds-services", "headers": headers})


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ((), TokenRejection.MISSING_TOKEN),
        (("Basic dXNlcjpwYXNz",), TokenRejection.MALFORMED_HEADER),
        (("Bearer",), TokenRejection.MALFORMED_HEADER),
        (("Bearer a b",), TokenRejection.MALFORMED_HEADER),
        (("Bearer not-a-jwt",), TokenRejection.MALFORMED_TOKEN),
        (("Bearer x.y.z", "Bearer x.y.z"), TokenRejection.MALFORMED_HEADER),
    ],
)
@pytest.mark.anyio
async def test_authorization_header_forms(
    es_verifier: ClientTokenVerifier, headers: tuple[str, ...], reason: TokenRejection
) -> None:
    with pytest.raises(Unauthorized) as caught:
        await es_verifier(request_with(*headers), AUDIENCE)
    assert caught.value.reason == reason


@pytest.mark.anyio
async def test_authenticator_reports_the_reason_but_never_the_token(es_key: SigningKey) -> None:
    reasons: list[str] = []
    verifier = verifier_for(TrustedIssuer(ISSUER, keys=JwkSet.from_json(jwks_of(es_key))), on_rejected=reasons.append)
    token = mint(es_key, claims(aud="https://elsewhere.example.org"))
    request = request_with(f"bearer {token}")  # the scheme is case-insensitive
    with pytest.raises(Unauthorized) as caught:
        await verifier(request, AUDIENCE)
    assert reasons == ["wrong_audience"]
    assert request.state.auth_failure == "wrong_audience"
    body = json.dumps(caught.value.to_operation_outcome())
    assert token not in body and "wrong_audience" not in body
    identity = await verifier(request_with(f"Bearer {mint(es_key)}"), AUDIENCE)
    assert identity.issuer == ISSUER


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(
        st.text(max_size=300),
        st.lists(
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80),
            min_size=3,
            max_size=3,
        ).map(".".join),
    )
)
@pytest.mark.anyio
async def test_any_garbage_token_is_a_plain_rejection(es_verifier: ClientTokenVerifier, token: str) -> None:
    with pytest.raises(Unauthorized):
        await es_verifier.verify(token, AUDIENCE)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "jku", "crit", "x5u"]),
        st.none() | st.integers() | st.text(max_size=20) | st.sampled_from(["ES384", "RS384", "JWT", "ec-1"]),
    ),
    payload=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "iat", "jti", "nbf", "tenant"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20)
        | st.lists(st.text(max_size=5), max_size=3),
    ),
)
@pytest.mark.anyio
async def test_any_unsigned_header_and_claims_are_a_plain_rejection(
    es_verifier: ClientTokenVerifier, header: dict[str, Any], payload: dict[str, Any]
) -> None:
    with pytest.raises(Unauthorized):
        await es_verifier.verify(unsigned(header, payload, b"\x00" * 96), AUDIENCE)


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("kind", ["string", "boolean", "infinity", "list"])
async def test_dates_that_are_not_json_numbers_are_refused(
    es_verifier: ClientTokenVerifier, es_key: SigningKey, claim: str, kind: str
) -> None:
    # RFC 7519 §2 NumericDate: PyJWT alone reads "1800000000" and true through int().
    now = int(time.time())
    valid = {"exp": now + 300, "iat": now, "nbf": now - 10}[claim]
    value = {"string": str(valid), "boolean": True, "infinity": float("inf"), "list": [valid]}[kind]
    token = mint(es_key, claims(**{claim: value}))
    # exp = true is read as 1 (1970) by PyJWT: refused as expired before our check sees it
    assert await rejection(es_verifier, token) in {TokenRejection.INVALID_CLAIM, TokenRejection.EXPIRED}
    if kind != "boolean":
        assert await rejection(es_verifier, mint(es_key, claims(**{claim: value}))) == TokenRejection.INVALID_CLAIM


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["jti", "tenant"])
@pytest.mark.parametrize("value", ["a\x00b", "line\nbreak", "x" * 257])
async def test_claims_that_reach_the_audit_trail_are_bounded(
    es_verifier: ClientTokenVerifier, es_key: SigningKey, claim: str, value: str
) -> None:
    token = mint(es_key, claims(**{claim: value}))
    assert await rejection(es_verifier, token) == TokenRejection.INVALID_CLAIM


@pytest.mark.anyio
async def test_nbf_as_a_number_is_fine(es_verifier: ClientTokenVerifier, es_key: SigningKey) -> None:
    now = int(time.time())
    await es_verifier.verify(mint(es_key, claims(nbf=now - 10, iat=now, exp=now + 60.5)), AUDIENCE)

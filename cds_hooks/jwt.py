"""Verifying the CDS Client's JWT (CDS Hooks 2.0 "Trusting CDS Clients").

Every call (discovery, service, feedback) carries ``Authorization: Bearer <JWT>``. The
token is accepted only when all of these hold, in this order (cheap and key-free checks
first, so that garbage never costs a signature verification or a JWKS fetch):

1. header: ``typ`` is ``JWT``, ``kid`` is present, ``alg`` is on the allowlist, which
   admits asymmetric algorithms only (the spec forbids ``none`` and every symmetric one);
2. ``iss`` is a trusted issuer;
3. the key named by ``kid`` exists in the issuer's JWK Set and fits ``alg``. Keys pinned
   out of band (the issuer's configured set or file) are used whatever ``jku`` the token
   names: the spec lets client and service exchange the JWK Set out of band, and some
   clients (the CDS Hooks Sandbox) always send a ``jku``. A ``jku`` is fetched only when
   the pinned keys lack the ``kid`` and the URL is on that issuer's allowlist (no fetch
   of arbitrary URLs: that would be SSRF);
4. signature, then claims: ``iss``, ``aud``, ``exp``, ``iat``, ``jti`` present, ``aud``
   equal to the URL of the endpoint invoked, ``exp``/``iat`` within a small leeway,
   ``exp - iat`` at most the maximum token lifetime, ``tenant`` allowed if listed;
5. the ``jti`` was not seen before (kept for the token's remaining lifetime).

There is no ``sub`` claim in CDS Hooks 2.0. Any failure raises
:class:`~cds_hooks.errors.Unauthorized` with a :class:`TokenRejection` reason: the
client sees a bare 401, the reason goes to logs and metrics, the token goes nowhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
import orjson
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWKError,
    PyJWTError,
)
from starlette.requests import Request

from cds_hooks.errors import Unauthorized
from cds_hooks.registry import ClientIdentity

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "RECOMMENDED_ALGORITHMS",
    "REQUIRED_CLAIMS",
    "ClientTokenVerifier",
    "InMemoryReplayCache",
    "JwkSet",
    "JwkSetFile",
    "JwksCache",
    "ReplayCache",
    "TokenRejection",
    "TrustedIssuer",
]

logger = logging.getLogger("cds_hooks.jwt")

#: "ES384 and RS384 are RECOMMENDED" (spec); anything else only by configuration.
RECOMMENDED_ALGORITHMS: tuple[str, ...] = ("ES384", "RS384")
#: What a configuration may add: public-key algorithms. ``none`` and HS* are never here.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: The spec's REQUIRED payload claims (no ``sub`` since 2018, cds-hooks/docs 86bc709).
REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "aud", "exp", "iat", "jti")

# A CDS client JWT is a few hundred bytes (1-2 KB with RS 4096); anything far larger is
# not a token we will spend a base64 decode on.
_MAX_TOKEN_CHARS = 16 * 1024
# jti and tenant are stored with the audit event: ids, not documents.
_MAX_CLAIM_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Key types whose keys verify signatures; "oct" (shared secrets) is never accepted.
_PUBLIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class TokenRejection(StrEnum):
    """Why a token was refused: a fixed, low-cardinality set (metric label, log field)."""

    MISSING_TOKEN = "missing_token"  # noqa: S105 - a reason code, not a secret
    MALFORMED_HEADER = "malformed_header"
    MALFORMED_TOKEN = "malformed_token"  # noqa: S105 - a reason code, not a secret
    BAD_TYP = "bad_typ"
    MISSING_KID = "missing_kid"
    ALG_NOT_ALLOWED = "alg_not_allowed"
    ISS_NOT_ALLOWED = "iss_not_allowed"
    JKU_NOT_ALLOWED = "jku_not_allowed"
    JWKS_UNAVAILABLE = "jwks_unavailable"
    UNKNOWN_KID = "unknown_kid"
    KEY_MISMATCH = "key_mismatch"
    BAD_SIGNATURE = "bad_signature"
    MISSING_ISS = "missing_iss"
    MISSING_AUD = "missing_aud"
    MISSING_EXP = "missing_exp"
    MISSING_IAT = "missing_iat"
    MISSING_JTI = "missing_jti"
    INVALID_CLAIM = "invalid_claim"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    TENANT_NOT_ALLOWED = "tenant_not_allowed"
    REPLAYED_JTI = "replayed_jti"


_MISSING_CLAIM = {
    "iss": TokenRejection.MISSING_ISS,
    "aud": TokenRejection.MISSING_AUD,
    "exp": TokenRejection.MISSING_EXP,
    "iat": TokenRejection.MISSING_IAT,
    "jti": TokenRejection.MISSING_JTI,
}


class _Rejected(Exception):
    def __init__(self, reason: TokenRejection) -> None:
        super().__init__(reason.value)
        self.reason = reason


# -- keys -------------------------------------------------------------------------------


class JwkSet:
    """The public signing keys of one JWK Set (RFC 7517), looked up by ``kid``.

    Keys that cannot verify signatures are left out: symmetric (``oct``) keys, keys
    marked ``"use": "enc"`` or without ``verify`` in ``key_ops``, keys without a
    ``kid``, and every key whose ``kid`` occurs twice (the spec says it "MUST be
    unique"; picking one of two would be a guess).
    """

    def __init__(self, keys: Mapping[str, Mapping[str, Any]]) -> None:
        self._jwks = {kid: dict(jwk) for kid, jwk in keys.items()}
        self._built: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_json(cls, document: Any) -> JwkSet:
        """Parse a JWK Set document (already JSON-decoded); ``ValueError`` if it is not one."""
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise ValueError('a JWK Set is a JSON object with a "keys" array')
        by_kid: dict[str, Mapping[str, Any]] = {}
        duplicated: set[str] = set()
        for jwk in document["keys"]:
            if not _is_verification_key(jwk):
                continue
            kid = jwk["kid"]
            if kid in by_kid:
                duplicated.add(kid)
            by_kid[kid] = jwk
        return cls({kid: jwk for kid, jwk in by_kid.items() if kid not in duplicated})

    def __contains__(self, kid: object) -> bool:
        return kid in self._jwks

    def __len__(self) -> int:
        return len(self._jwks)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._jwks)

    def verification_key(self, kid: str, algorithm: str) -> Any:
        """The key ``kid`` as a ``cryptography`` public key for ``algorithm``.

        Raises ``KeyError`` for an unknown ``kid`` and ``ValueError`` when the key cannot
        serve ``algorithm`` (wrong key type or curve, or a JWK ``alg`` that differs).
        """
        cached = self._built.get((kid, algorithm))
        if cached is not None:
            return cached
        jwk = self._jwks[kid]
        declared = jwk.get("alg")
        if declared is not None and declared != algorithm:
            raise ValueError("the JWK is bound to another algorithm")
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm).key
        except (PyJWKError, InvalidKeyError, ValueError, TypeError) as exc:
            raise ValueError("the JWK does not fit the algorithm") from exc
        self._built[(kid, algorithm)] = key
        return key


class JwkSetFile:
    """A JWK Set pinned out of band in a file, re-read when the file changes on disk.

    Hospitals rotate a pinned key by replacing the file (a mounted secret or config map,
    which Kubernetes swaps in place): every lookup compares the file's identity (inode,
    size, modification time) with the one last read, a ``stat`` that costs far less than
    the signature check it precedes, and re-reads only on a change. So a new ``kid`` is
    accepted and a removed one refused from the first token after the change, without a
    restart. A file that cannot be read or holds no usable key keeps the keys read
    before (a half-written file must not lock every client out); it is read again when
    it changes again.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._identity = self._stat()
        self._keys = self._read()  # at start a broken file is an error, not a fallback
        if not self._keys:
            raise ValueError(f"the JWK Set in {path} holds no usable public signing key")

    @property
    def path(self) -> Path:
        return self._path

    def current(self) -> JwkSet:
        """The keys as the file holds them now (or the last good ones, see above)."""
        try:
            identity = self._stat()
        except ValueError:
            identity = None
        if identity is not None and identity != self._identity:
            self._identity = identity
            try:
                keys = self._read()
                if not keys:
                    raise ValueError("no usable public signing key")
            except ValueError as exc:
                logger.warning(
                    "pinned JWK Set file unusable; keeping its previous keys",
                    extra={"event": "jwks_file_unusable", "error": type(exc).__name__},
                )
            else:
                self._keys = keys
        return self._keys

    def _stat(self) -> tuple[int, int, int]:
        try:
            info = os.stat(self._path)
        except OSError as exc:
            raise ValueError(f"cannot read a JWK Set from {self._path}") from exc
        return info.st_ino, info.st_size, info.st_mtime_ns

    def _read(self) -> JwkSet:
        try:
            document = orjson.loads(self._path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"cannot read a JWK Set from {self._path}") from exc
        return JwkSet.from_json(document)


def _is_verification_key(jwk: Any) -> bool:
    if not isinstance(jwk, Mapping):
        return False
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        return False
    if jwk.get("kty") not in _PUBLIC_KEY_TYPES or "d" in jwk:
        # "d" is a private key parameter: a JWK Set published with it is a leak, not a trust anchor.
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    key_ops = jwk.get("key_ops")
    return key_ops is None or (isinstance(key_ops, list) and "verify" in key_ops)


@dataclass(slots=True)
class _CachedSet:
    keys: JwkSet | None
    fetched_at: float
    attempted_at: float


class JwksCache:
    """JWK Sets fetched from allowlisted URLs, cached and refreshed asynchronously.

    A set is reused for ``ttl_s`` (clients rotate keys rarely; PyJWKClient's default is
    also 300 s). A ``kid`` the cached set lacks triggers a refetch, at most once per
    ``refresh_interval_s`` per URL: key rotation is picked up within seconds, while a
    flood of tokens with made-up ``kid``s costs the client's server one request per
    interval. A failed fetch keeps the previous keys (a JWKS outage of the client must not
    lock out tokens signed with keys we already know).

    ``clock`` is monotonic seconds; tests pin it instead of sleeping.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        ttl_s: float = 300.0,
        refresh_interval_s: float = 30.0,
        timeout_s: float = 2.0,
        max_bytes: int = 256 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._owns_client = client is None
        self._ttl_s = ttl_s
        self._refresh_interval_s = refresh_interval_s
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: dict[str, _CachedSet] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def lookup(self, url: str, kid: str) -> JwkSet | None:
        """The set at ``url``, refreshed if it is stale or lacks ``kid``; ``None`` if never fetched."""
        cached = self._fresh(url, kid)
        if cached is not None:
            return cached  # the common case: no lock, so a slow refresh never stalls known keys
        lock = self._locks.get(url)
        if lock is None:
            lock = self._locks[url] = asyncio.Lock()
        async with lock:
            # Another task may have refreshed while this one waited.
            cached = self._fresh(url, kid)
            if cached is not None:
                return cached
            entry = self._entries.get(url)
            now = self._clock()
            if entry is None or now - entry.attempted_at >= self._refresh_interval_s:
                entry = await self._refresh(url, entry, now)
            return entry.keys

    def _fresh(self, url: str, kid: str) -> JwkSet | None:
        entry = self._entries.get(url)
        if entry is None or entry.keys is None or kid not in entry.keys:
            return None
        return entry.keys if self._clock() - entry.fetched_at < self._ttl_s else None

    async def _refresh(self, url: str, previous: _CachedSet | None, now: float) -> _CachedSet:
        try:
            keys = JwkSet.from_json(await self._fetch(url))
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            # The URL is operator configuration, not request data; the reason is a class name.
            logger.warning("JWK Set fetch failed", extra={"event": "jwks_fetch_failed", "error": type(exc).__name__})
            kept = previous.keys if previous is not None else None
            entry = _CachedSet(keys=kept, fetched_at=previous.fetched_at if previous else now, attempted_at=now)
        else:
            entry = _CachedSet(keys=keys, fetched_at=now, attempted_at=now)
        self._entries[url] = entry
        return entry

    async def _fetch(self, url: str) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False)
        body = bytearray()
        # Redirects are not followed: the allowlisted URL is the one that must answer.
        request = self._client.stream("GET", url, headers={"Accept": "application/json"}, follow_redirects=False)
        async with request as response:
            if response.status_code != 200:
                raise ValueError(f"JWK Set endpoint answered HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > self._max_bytes:
                    raise ValueError("JWK Set document too large")
        try:
            return orjson.loads(bytes(body))
        except orjson.JSONDecodeError as exc:
            raise ValueError("JWK Set document is not JSON") from exc

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


# -- replay -----------------------------------------------------------------------------


class ReplayCache(Protocol):
    """Remembers token ids; the implementation decides where (memory, Redis)."""

    async def first_use(self, key: str, ttl_s: int) -> bool:
        """Record ``key`` for ``ttl_s`` seconds; ``False`` if it was already recorded."""
        ...

    async def aclose(self) -> None: ...


class InMemoryReplayCache:
    """A per-process :class:`ReplayCache`: right for one replica, not for several.

    Only verified tokens reach it, so its size is bounded by legitimate traffic over the
    maximum token lifetime; expired ids are dropped as new ones arrive.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def first_use(self, key: str, ttl_s: int) -> bool:
        now = self._clock()
        self._purge(now)
        if key in self._expiry:
            return False
        expires = now + ttl_s
        self._expiry[key] = expires
        heapq.heappush(self._queue, (expires, key))
        return True

    def _purge(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            _, key = heapq.heappop(self._queue)
            self._expiry.pop(key, None)

    async def aclose(self) -> None:
        self._expiry.clear()
        self._queue.clear()


# -- issuers and the verifier -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """A CDS Client we trust, and where its public keys come from.

    ``keys`` is the JWK Set communicated out of band (configured inline, or a file that
    is re-read when it changes): it verifies the issuer's tokens whatever ``jku`` they
    name. ``jku`` lists the JWK Set URLs this issuer may name in its tokens' ``jku``
    header, fetched when ``keys`` lacks the ``kid``; for a token without ``jku`` they are
    also where its keys are looked up. ``tenants``, when given, is the allowlist of
    ``tenant`` claims (a token without ``tenant`` is then refused).
    """

    issuer: str
    keys: JwkSet | JwkSetFile | None = None
    jku: frozenset[str] = frozenset()
    tenants: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("a trusted issuer needs its iss value")
        if self.keys is None and not self.jku:
            raise ValueError(f"trusted issuer {self.issuer!r} needs a JWK Set or allowed jku URLs")


@dataclass(frozen=True, slots=True)
class _Header:
    algorithm: str
    kid: str
    jku: str | None


class ClientTokenVerifier:
    """Checks client JWTs; an instance is a :data:`cds_hooks.router.Authenticator`.

    ``leeway_s`` absorbs clock skew between client and service (Inferno's CDS Hooks
    test kit uses 60 s). ``max_lifetime_s`` caps ``exp - iat``: the best-practice page
    asks for tokens that live "no more than an hour", and the replay cache must hold
    each ``jti`` that long. ``on_rejected`` receives each rejection reason (metrics).
    """

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        *,
        algorithms: Iterable[str] = RECOMMENDED_ALGORITHMS,
        leeway_s: int = 60,
        max_lifetime_s: int = 3600,
        replay_cache: ReplayCache | None = None,
        jwks: JwksCache | None = None,
        on_rejected: Callable[[str], None] | None = None,
    ) -> None:
        self._algorithms = frozenset(algorithms)
        unsafe = self._algorithms - ASYMMETRIC_ALGORITHMS
        if unsafe or not self._algorithms:
            raise ValueError(f"only asymmetric signature algorithms may be allowed, not {sorted(unsafe)}")
        if leeway_s < 0 or max_lifetime_s <= 0:
            raise ValueError("the leeway must be >= 0 and the maximum token lifetime > 0")
        self._issuers: dict[str, TrustedIssuer] = {}
        for issuer in issuers:
            if issuer.issuer in self._issuers:
                raise ValueError(f"trusted issuer {issuer.issuer!r} is configured twice")
            self._issuers[issuer.issuer] = issuer
        self._leeway_s = leeway_s
        self._max_lifetime_s = max_lifetime_s
        self._replay_cache: ReplayCache = replay_cache if replay_cache is not None else InMemoryReplayCache()
        self._jwks = jwks if jwks is not None else JwksCache()
        self._on_rejected = on_rejected

    @property
    def issuers(self) -> frozenset[str]:
        return frozenset(self._issuers)

    async def __call__(self, request: Request, audience: str) -> ClientIdentity:
        try:
            token = _bearer_token(request.headers.getlist("authorization"))
            return await self._verify(token, audience)
        except _Rejected as rejected:
            reason = rejected.reason.value
            request.state.auth_failure = reason
            logger.warning("client token rejected", extra={"event": "auth_rejected", "auth_failure": reason})
            if self._on_rejected is not None:
                self._on_rejected(reason)
            raise Unauthorized(reason) from None

    async def verify(self, token: str, audience: str) -> ClientIdentity:
        """Verify ``token`` for the endpoint URL ``audience`` (without a request around it)."""
        try:
            return await self._verify(token, audience)
        except _Rejected as rejected:
            raise Unauthorized(rejected.reason.value) from None

    async def aclose(self) -> None:
        await self._jwks.aclose()
        await self._replay_cache.aclose()

    async def _verify(self, token: str, audience: str) -> ClientIdentity:
        header = self._check_header(token)
        issuer = self._trusted_issuer(token)
        key = await self._key(issuer, header)
        claims = self._decode(token, key, header.algorithm, issuer.issuer, audience)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise _Rejected(TokenRejection.MISSING_JTI)
        if not _storable(jti):
            raise _Rejected(TokenRejection.INVALID_CLAIM)
        expires, issued = float(claims["exp"]), float(claims["iat"])
        if expires - issued > self._max_lifetime_s:
            raise _Rejected(TokenRejection.LIFETIME_TOO_LONG)
        tenant = claims.get("tenant")
        tenant = tenant if isinstance(tenant, str) and tenant else None
        if tenant is not None and not _storable(tenant):
            raise _Rejected(TokenRejection.INVALID_CLAIM)
        if issuer.tenants is not None and tenant not in issuer.tenants:
            raise _Rejected(TokenRejection.TENANT_NOT_ALLOWED)
        # Last, so that a token failing any other check never uses up its jti.
        remaining = max(1, math.ceil(expires + self._leeway_s - time.time()))
        replay_key = hashlib.sha256(f"{issuer.issuer}\x00{jti}".encode()).hexdigest()
        if not await self._replay_cache.first_use(replay_key, remaining):
            raise _Rejected(TokenRejection.REPLAYED_JTI)
        return ClientIdentity(
            issuer=issuer.issuer, jti=jti, tenant=tenant, expires_at=datetime.fromtimestamp(expires, UTC)
        )

    def _check_header(self, token: str) -> _Header:
        if len(token) > _MAX_TOKEN_CHARS:
            raise _Rejected(TokenRejection.MALFORMED_TOKEN)
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise _Rejected(TokenRejection.MALFORMED_TOKEN) from None
        algorithm = header.get("alg")
        # Before any key is touched: this is what defeats "none" and HS*-with-a-public-key.
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise _Rejected(TokenRejection.ALG_NOT_ALLOWED)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise _Rejected(TokenRejection.BAD_TYP)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _Rejected(TokenRejection.MISSING_KID)
        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise _Rejected(TokenRejection.JKU_NOT_ALLOWED)
        return _Header(algorithm=algorithm, kid=kid, jku=jku)

    def _trusted_issuer(self, token: str) -> TrustedIssuer:
        # Unverified on purpose: iss only selects the keys; the signature is checked next.
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except PyJWTError:
            raise _Rejected(TokenRejection.MALFORMED_TOKEN) from None
        iss = unverified.get("iss")
        if iss is None:
            raise _Rejected(TokenRejection.MISSING_ISS)
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _Rejected(TokenRejection.ISS_NOT_ALLOWED)
        return issuer

    async def _key(self, issuer: TrustedIssuer, header: _Header) -> Any:
        keys = await self._key_set(issuer, header)
        try:
            return keys.verification_key(header.kid, header.algorithm)
        except ValueError:
            raise _Rejected(TokenRejection.KEY_MISMATCH) from None

    async def _key_set(self, issuer: TrustedIssuer, header: _Header) -> JwkSet:
        pinned = issuer.keys.current() if isinstance(issuer.keys, JwkSetFile) else issuer.keys
        if pinned is not None and header.kid in pinned:
            return pinned  # out-of-band keys win: the token's jku is neither needed nor fetched
        if header.jku is not None:
            if header.jku not in issuer.jku:
                # Never fetched. With pinned keys the jku was only a hint, so the key is unknown.
                raise _Rejected(TokenRejection.UNKNOWN_KID if pinned is not None else TokenRejection.JKU_NOT_ALLOWED)
            urls: list[str] = [header.jku]
        else:
            urls = sorted(issuer.jku)
        reachable = False
        for url in urls:
            keys = await self._jwks.lookup(url, header.kid)
            reachable = reachable or keys is not None
            if keys is not None and header.kid in keys:
                return keys
        if urls and not reachable and issuer.keys is None:
            raise _Rejected(TokenRejection.JWKS_UNAVAILABLE)
        raise _Rejected(TokenRejection.UNKNOWN_KID)

    def _decode(self, token: str, key: Any, algorithm: str, issuer: str, audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer,
                leeway=self._leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "verify_sub": False},
            )
        except MissingRequiredClaimError as exc:
            raise _Rejected(_MISSING_CLAIM.get(exc.claim, TokenRejection.INVALID_CLAIM)) from None
        except InvalidSignatureError:
            raise _Rejected(TokenRejection.BAD_SIGNATURE) from None
        except ExpiredSignatureError:
            raise _Rejected(TokenRejection.EXPIRED) from None
        except ImmatureSignatureError:
            raise _Rejected(TokenRejection.NOT_YET_VALID) from None
        except InvalidAudienceError:
            raise _Rejected(TokenRejection.WRONG_AUDIENCE) from None
        except InvalidIssuerError:
            raise _Rejected(TokenRejection.ISS_NOT_ALLOWED) from None
        except (InvalidAlgorithmError, InvalidKeyError):
            raise _Rejected(TokenRejection.KEY_MISMATCH) from None
        except PyJWTError:
            # InvalidIssuedAtError, InvalidJTIError, a non-integer exp (DecodeError), ...
            raise _Rejected(TokenRejection.INVALID_CLAIM) from None
        _require_numeric_dates(claims)
        return claims


def _storable(claim: str) -> bool:
    """``jti`` and ``tenant`` go to the audit trail: bounded, and no NUL or control character."""
    return len(claim) <= _MAX_CLAIM_CHARS and _CONTROL.search(claim) is None


def _require_numeric_dates(claims: Mapping[str, Any]) -> None:
    """RFC 7519 §2: ``exp``, ``iat`` and ``nbf`` are NumericDates, JSON numbers.

    PyJWT reads them through ``int()``, which takes ``"9999999999"`` and ``true``; and
    Python's JSON reader takes ``Infinity``, a token that would never expire.
    """
    for name in ("exp", "iat", "nbf"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _Rejected(TokenRejection.INVALID_CLAIM)


def _bearer_token(values: list[str]) -> str:
    if not values:
        raise _Rejected(TokenRejection.MISSING_TOKEN)
    if len(values) > 1:
        # Two Authorization headers: which one the proxy checked is anyone's guess.
        raise _Rejected(TokenRejection.MALFORMED_HEADER)
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    # RFC 7235: the scheme is case-insensitive.
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _Rejected(TokenRejection.MALFORMED_HEADER)
    return token

"""A CDS Client (an EHR) in a terminal: the JWT signing key, and one call session.

Steps, as an EHR takes them: discovery (``GET {service}/cds-services``), prefetch
fulfilled from the FHIR server by the client itself (every page of every template),
then the hook call with a fresh ``hookInstance`` and, given a signing key, a client JWT
per CDS Hooks 2.0 "Trusting CDS Clients": ES384 or RS384 by key type, ``aud`` = the URL
invoked, ``iss``, a new ``jti``, five-minute ``exp`` and a ``kid``.
Progress goes to stderr, the cards to stdout. ``mscc-cds call`` and ``mscc-cds token``
import this module when they run (it imports httpx, PyJWT and the FHIR client).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_hooks.prefetch import PrefetchTemplateError, render_template
from service.cli.fhir_access import fhir_authorization, fhir_token
from service.errors import MsccError
from service.fhir.client import FhirClient, build_http_client
from service.fhir.gather import FhirFetchError
from service.fhir.settings import FhirSettings
from service.screening import EVALUATION_TIME_EXTENSION

__all__ = ["TOKEN_LIFETIME_S", "CallError", "Caller", "SigningKey", "call_service", "write_jwks"]

#: "exp ... SHOULD be short-lived": five minutes covers clock skew and a slow network.
TOKEN_LIFETIME_S = 300
_CURVE_ALGORITHMS = {"P-384": "ES384", "P-256": "ES256", "P-521": "ES512"}
#: a prefetch key the client cannot satisfy is left out of the request ("MUST omit")
_OMIT = object()


class CallError(MsccError):
    """The call cannot go on; the message is meant for the person at the terminal."""


class SigningKey:
    """A CDS Client's private key, and the JWTs it signs."""

    def __init__(self, pem: bytes, *, issuer: str, kid: str | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(pem, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            algorithm = _CURVE_ALGORITHMS.get(str(jwk.get("crv")))
            if algorithm is None:
                raise CallError(f"unsupported EC curve {jwk.get('crv')}; use P-384 (ES384)")
        elif isinstance(key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            algorithm = "RS384"
        else:
            raise CallError("the signing key must be an EC (P-384) or RSA private key")
        self._key = key
        self.issuer = issuer
        self.algorithm = algorithm
        self.kid = kid or _thumbprint(jwk)
        self.public_jwk = {**jwk, "kid": self.kid, "alg": algorithm, "use": "sig"}

    @classmethod
    def load(cls, path: Path, *, issuer: str, kid: str | None = None) -> SigningKey:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise CallError(f"cannot read the signing key {path} ({exc.strerror})") from None
        try:
            return cls(pem, issuer=issuer, kid=kid)
        except (ValueError, TypeError):
            raise CallError(f"{path} is not an unencrypted PEM private key") from None

    def token(self, audience: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self.kid, "typ": "JWT"})


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    import base64
    import hashlib

    required = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = orjson.dumps({name: jwk[name] for name in required}, option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _problem(response: httpx.Response) -> str:
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        texts = [str(issue.get("diagnostics") or issue.get("code")) for issue in body.get("issue") or ()]
        return f"HTTP {response.status_code}: " + "; ".join(texts)
    return f"HTTP {response.status_code}"


class Caller:
    """One CDS Client session: the service, the FHIR server, and the client's credentials."""

    def __init__(
        self,
        service: httpx.AsyncClient,
        fhir: FhirClient,
        args: argparse.Namespace,
        *,
        fhir_server: str,
        token: str | None,
        signer: SigningKey | None,
        order_context: dict[str, Any] | None = None,
    ) -> None:
        self._service = service
        self._fhir = fhir
        self._args = args
        self._base = args.service.rstrip("/")
        self._fhir_server = fhir_server
        self._token = token
        self._signer = signer
        #: draftOrders (and selections) of an order hook, checked before the call by call.run()
        self._order_context = order_context or {}

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._signer is not None:
            headers["Authorization"] = f"Bearer {self._signer.token(url)}"
        return headers

    async def _send(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        headers = self._headers(url)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._service.request(
                method, url, headers=headers, content=orjson.dumps(body) if body is not None else None
            )
        except httpx.HTTPError as exc:
            raise CallError(f"cannot reach the CDS Service at {url} ({type(exc).__name__})") from None
        if not response.is_success:
            raise CallError(f"{method} {url} failed: {_problem(response)}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise CallError(f"{method} {url} answered with something that is not JSON") from None

    async def discover(self) -> dict[str, Any]:
        url = f"{self._base}/cds-services"
        print(f"Discovery: GET {url}", file=sys.stderr)
        document = await self._send("GET", url)
        services = document.get("services") if isinstance(document, dict) else None
        for service in services or ():
            if not isinstance(service, dict) or service.get("hook") != self._args.hook:
                continue
            if self._args.service_id in (None, service.get("id")):
                return service
        wanted = f" with id {self._args.service_id!r}" if self._args.service_id else ""
        raise CallError(f"the CDS Service offers no service for {self._args.hook}{wanted}")

    def context(self) -> dict[str, Any]:
        context = {"userId": self._args.user, "patientId": self._args.patient}
        if self._args.encounter:
            context["encounterId"] = self._args.encounter
        return {**context, **self._order_context}

    async def _prefetch_one(self, key: str, template: str, context: dict[str, Any]) -> tuple[str, Any]:
        try:
            query = render_template(template, context)
        except PrefetchTemplateError as exc:
            print(f"  {key}: not sent ({exc})", file=sys.stderr)
            return key, _OMIT
        try:
            resources = await self._fhir.fetch(self._fhir_server, query, self._token)
        except FhirFetchError as exc:
            if exc.status == 404 and "?" not in query:
                # a read of something that does not exist: "no data" is null
                print(f"  {key}: null (not found)", file=sys.stderr)
                return key, None
            print(f"  {key}: not sent ({exc.reason})", file=sys.stderr)
            return key, _OMIT
        print(f"  {key}: {len(resources)} resource(s)", file=sys.stderr)
        if "?" not in query:
            return key, resources[0]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "entry": [{"resource": resource} for resource in resources],
        }
        return key, bundle

    async def prefetch(self, templates: dict[str, str], context: dict[str, Any]) -> dict[str, Any]:
        """Every template the client can satisfy; a failed key is left out, as the spec asks."""
        print(f"Prefetch from {self._fhir_server}:", file=sys.stderr)
        results = await asyncio.gather(*(self._prefetch_one(key, t, context) for key, t in templates.items()))
        return {key: value for key, value in results if value is not _OMIT}

    async def invoke(self, service: dict[str, Any]) -> list[dict[str, Any]]:
        context = self.context()
        templates = service.get("prefetch") or {}
        body: dict[str, Any] = {
            "hook": self._args.hook,
            "hookInstance": str(uuid.uuid4()),
            "fhirServer": self._fhir_server,
            "context": context,
        }
        if self._token:
            body["fhirAuthorization"] = fhir_authorization(self._token)
        at = getattr(self._args, "evaluation_time", None)
        if at is not None:
            body["extension"] = {EVALUATION_TIME_EXTENSION: at.isoformat()}
        if templates:
            body["prefetch"] = await self.prefetch(dict(templates), context)
        url = f"{self._base}/cds-services/{service['id']}"
        print(f"Hook {self._args.hook}: POST {url}", file=sys.stderr)
        response = await self._send("POST", url, body)
        cards = response.get("cards") if isinstance(response, dict) else None
        if not isinstance(cards, list):
            raise CallError("the CDS Service answered without a cards array")
        return [card for card in cards if isinstance(card, dict)]


async def call_service(
    args: argparse.Namespace,
    fhir_server: str,
    signer: SigningKey | None,
    order_context: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    # The user names the FHIR server, so it is the allowlist; the terminal can wait longer than an EHR.
    settings = FhirSettings(allowed_servers=[fhir_server], budget_s=args.timeout * 4, request_timeout_s=args.timeout)
    async with (
        build_http_client(settings) as fhir_http,
        httpx.AsyncClient(timeout=args.timeout, follow_redirects=False) as service_http,
    ):
        caller = Caller(
            service_http,
            FhirClient(fhir_http, settings, mode="development"),
            args,
            fhir_server=fhir_server,
            token=fhir_token(args),
            signer=signer,
            order_context=order_context,
        )
        service = await caller.discover()
        return await caller.invoke(service)


def write_jwks(signer: SigningKey, path: Path) -> None:
    """Write ``signer``'s public JWK Set to ``path``, for the service's ``MSCC_AUTH__ISSUERS``."""
    path.write_bytes(orjson.dumps({"keys": [signer.public_jwk]}, option=orjson.OPT_INDENT_2))
    print(f"Public JWK Set written to {path} (kid {signer.kid})", file=sys.stderr)

"""``mscc-cds call``: a CDS Client's discovery, prefetch and signed hook call, against fakes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.cli import main
from service.cli.call import HOOKS as CLI_HOOKS
from service.cli.call import add_arguments
from service.cli.draftorders import DraftOrderError, draft_order_context
from service.cli.ehr_client import Caller, CallError, SigningKey, _thumbprint
from service.cli.exitcodes import FAILURE
from service.clinical.outcome import HOOKS
from service.fhir.client import FhirClient, build_http_client
from service.fhir.settings import FhirSettings
from tests.bundles import draft_service_request

pytestmark = pytest.mark.anyio

SERVICE = "http://cds.test"
FHIR = "http://fhir.test/fhir"
TOKEN = "fhir-token-cli-1"
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "labs": "Observation?patient={{context.patientId}}&code=http://loinc.org|17861-6",
    "encounter": "Encounter/{{context.encounterId}}",
    "author": "Practitioner/{{userPractitionerId}}",
    "viewer": "Patient/{{userPatientId}}",
}
CARD = {
    "uuid": "0b0c1d2e-0000-4000-8000-000000000001",
    "summary": "Suspected MSCC",
    "indicator": "critical",
    "source": {"label": "mscc-cds", "topic": {"system": "x", "code": "R1"}},
}


def pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def arguments(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--service", SERVICE, "--patient", "p1", "--fhir-server", FHIR, *extra])


class TestSigningKey:
    def test_es384_token_per_cds_hooks(self) -> None:
        key = ec.generate_private_key(ec.SECP384R1())
        signer = SigningKey(pem(key), issuer="https://ehr.test")
        token = signer.token(f"{SERVICE}/cds-services/mscc-patient-view")
        header = jwt.get_unverified_header(token)
        assert header == {"alg": "ES384", "kid": signer.kid, "typ": "JWT"}
        claims = jwt.decode(
            token, key.public_key(), algorithms=["ES384"], audience=f"{SERVICE}/cds-services/mscc-patient-view"
        )
        assert claims["iss"] == "https://ehr.test"
        assert claims["exp"] - claims["iat"] == 300
        assert claims["jti"] != jwt.decode(signer.token("x"), options={"verify_signature": False})["jti"]

    def test_rs384_for_rsa_keys_and_explicit_kid(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signer = SigningKey(pem(key), issuer="iss", kid="key-1")
        token = signer.token("aud")
        assert jwt.get_unverified_header(token)["alg"] == "RS384"
        assert jwt.get_unverified_header(token)["kid"] == "key-1"
        assert signer.public_jwk["kid"] == "key-1"
        assert "d" not in signer.public_jwk  # public only

    def test_default_kid_is_the_rfc7638_thumbprint(self) -> None:
        # RFC 7638 §3.1 example
        n = (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjB"
            "ZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8K"
            "JZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xB"
            "niIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        )
        thumbprint = _thumbprint({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
        assert thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

    def test_unusable_keys(self, tmp_path: Path) -> None:
        (tmp_path / "not-a-key.pem").write_text("hello")
        with pytest.raises(CallError, match="not an unencrypted PEM private key"):
            SigningKey.load(tmp_path / "not-a-key.pem", issuer="iss")
        with pytest.raises(CallError, match="cannot read"):
            SigningKey.load(tmp_path / "missing.pem", issuer="iss")


class FakeEhrAndService:
    def __init__(self) -> None:
        self.service_requests: list[httpx.Request] = []
        self.fhir_requests: list[httpx.Request] = []
        self.hook_body: dict[str, Any] = {}

    def service(self, request: httpx.Request) -> httpx.Response:
        self.service_requests.append(request)
        if request.method == "GET" and request.url.path == "/cds-services":
            services = [
                *({"hook": hook, "id": f"mscc-{hook}", "description": "d", "prefetch": TEMPLATES} for hook in HOOKS),
                {"hook": "order-sign", "id": "other", "description": "d"},
            ]
            return httpx.Response(200, json={"services": services})
        if request.method == "POST" and request.url.path.removeprefix("/cds-services/mscc-") in HOOKS:
            self.hook_body = orjson.loads(request.content)
            return httpx.Response(200, json={"cards": [CARD]})
        return httpx.Response(404)

    def fhir(self, request: httpx.Request) -> httpx.Response:
        self.fhir_requests.append(request)
        path = request.url.path
        if path == "/fhir/Patient/p1":
            return httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})
        if path == "/fhir/Condition":
            first = request.url.params.get("page") is None
            link = [{"relation": "next", "url": f"{FHIR}/Condition?patient=p1&page=2"}] if first else []
            entry = [{"resource": {"resourceType": "Condition", "id": "c1" if first else "c2"}}]
            return httpx.Response(
                200, json={"resourceType": "Bundle", "type": "searchset", "link": link, "entry": entry}
            )
        if path == "/fhir/Observation":
            return httpx.Response(503, headers={"Retry-After": "3600"})
        return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})


async def run_caller(fakes: FakeEhrAndService, args: argparse.Namespace, signer: SigningKey | None) -> list[Any]:
    settings = FhirSettings(allowed_servers=[FHIR], budget_s=5, request_timeout_s=5)
    async with (
        build_http_client(settings, transport=httpx.MockTransport(fakes.fhir)) as fhir_http,
        httpx.AsyncClient(transport=httpx.MockTransport(fakes.service)) as service_http,
    ):
        fhir = FhirClient(fhir_http, settings, mode="development")
        caller = Caller(service_http, fhir, args, fhir_server=FHIR, token=TOKEN, signer=signer)
        return await caller.invoke(await caller.discover())


async def test_call_flow_with_prefetch_from_the_fhir_server_and_a_signed_jwt() -> None:
    fakes = FakeEhrAndService()
    key = ec.generate_private_key(ec.SECP384R1())
    signer = SigningKey(pem(key), issuer="https://ehr.test")
    cards = await run_caller(fakes, arguments("--encounter", "e1"), signer)
    assert cards == [CARD]

    body = fakes.hook_body
    assert body["hook"] == "patient-view"
    assert body["fhirServer"] == FHIR
    assert body["fhirAuthorization"]["access_token"] == TOKEN
    assert body["context"] == {"userId": "Practitioner/mscc-cds-cli", "patientId": "p1", "encounterId": "e1"}
    prefetch = body["prefetch"]
    assert prefetch["patient"] == {"resourceType": "Patient", "id": "p1"}
    assert [entry["resource"]["id"] for entry in prefetch["conditions"]["entry"]] == ["c1", "c2"]  # every page
    assert "link" not in prefetch["conditions"]
    assert prefetch["encounter"] is None  # a read of nothing: null
    assert prefetch["author"] is None
    assert "viewer" not in prefetch  # the template cannot be filled for a practitioner user
    assert "labs" not in prefetch  # the client could not get it: the key is left out

    discovery, hook = fakes.service_requests
    for request, audience in (
        (discovery, f"{SERVICE}/cds-services"),
        (hook, f"{SERVICE}/cds-services/mscc-patient-view"),
    ):
        token = request.headers["Authorization"].removeprefix("Bearer ")
        jwt.decode(token, key.public_key(), algorithms=["ES384"], audience=audience, issuer="https://ehr.test")
    assert {request.headers.get("Authorization") for request in fakes.fhir_requests} == {f"Bearer {TOKEN}"}


async def test_hook_instance_is_fresh_per_call() -> None:
    fakes = FakeEhrAndService()
    await run_caller(fakes, arguments(), None)
    first = fakes.hook_body["hookInstance"]
    await run_caller(fakes, arguments(), None)
    assert fakes.hook_body["hookInstance"] != first
    assert "Authorization" not in fakes.service_requests[0].headers


async def test_no_service_for_the_hook() -> None:
    with pytest.raises(CallError, match="no service for patient-view with id 'nope'"):
        await run_caller(FakeEhrAndService(), arguments("--service-id", "nope"), None)


def test_usage_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["call", "--service", "http://127.0.0.1:9", "--patient", "p1", "--fhir-server", "http://127.0.0.1:9/fhir"]
    assert main([*base, "--signing-key", str(tmp_path / "k.pem")]) == FAILURE
    assert "--signing-key needs --issuer" in capsys.readouterr().err
    assert main([*base, "--signing-key", str(tmp_path / "k.pem"), "--issuer", "i"]) == FAILURE
    assert "cannot read the signing key" in capsys.readouterr().err
    assert main([*base, "--hook", "encounter-start"]) == FAILURE
    assert "needs --encounter" in capsys.readouterr().err
    assert main(base) == FAILURE  # nothing listens on the discard port
    assert "cannot reach the CDS Service at http://127.0.0.1:9/cds-services" in capsys.readouterr().err


def test_jwks_out_writes_the_public_key_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "client.pem"
    key_file.write_bytes(pem(ec.generate_private_key(ec.SECP384R1())))
    jwks = tmp_path / "jwks.json"
    base = ["call", "--service", "http://127.0.0.1:9", "--patient", "p1", "--fhir-server", "http://127.0.0.1:9/fhir"]
    main([*base, "--signing-key", str(key_file), "--issuer", "https://ehr.test", "--jwks-out", str(jwks)])
    (public,) = orjson.loads(jwks.read_bytes())["keys"]
    assert public["kty"] == "EC" and public["alg"] == "ES384" and "d" not in public
    assert public["kid"] in capsys.readouterr().err


# -- order hooks: context.draftOrders from a file ----------------------------------------

DRAFT_MRI = draft_service_request(
    "draft-mri-1", "p1", code={"coding": [{"system": "http://loinc.org", "code": "30854-4"}]}
)
DRAFT_XRAY = draft_service_request("draft-xray-1", "p1", code={"text": "XR spine"})


def draft_orders(tmp_path: Path, *resources: Any, name: str = "drafts.json") -> Path:
    path = tmp_path / name
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    path.write_bytes(orjson.dumps(bundle))
    return path


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
async def test_order_hooks_send_the_draft_orders_to_their_own_service(tmp_path: Path, hook: str) -> None:
    fakes = FakeEhrAndService()
    path = draft_orders(tmp_path, DRAFT_MRI, DRAFT_XRAY)
    args = arguments("--hook", hook, "--draft-orders", str(path))
    order_context = draft_order_context(hook, path, None, "p1")

    settings = FhirSettings(allowed_servers=[FHIR], budget_s=5, request_timeout_s=5)
    async with (
        build_http_client(settings, transport=httpx.MockTransport(fakes.fhir)) as fhir_http,
        httpx.AsyncClient(transport=httpx.MockTransport(fakes.service)) as service_http,
    ):
        fhir = FhirClient(fhir_http, settings, mode="development")
        caller = Caller(
            service_http, fhir, args, fhir_server=FHIR, token=TOKEN, signer=None, order_context=order_context
        )
        await caller.invoke(await caller.discover())

    assert fakes.service_requests[-1].url.path == f"/cds-services/mscc-{hook}"
    context = fakes.hook_body["context"]
    assert fakes.hook_body["hook"] == hook
    assert [entry["resource"]["id"] for entry in context["draftOrders"]["entry"]] == ["draft-mri-1", "draft-xray-1"]
    if hook == "order-select":  # every draft order by default
        assert context["selections"] == ["ServiceRequest/draft-mri-1", "ServiceRequest/draft-xray-1"]
    else:
        assert "selections" not in context


def test_selections_name_draft_orders(tmp_path: Path) -> None:
    path = draft_orders(tmp_path, DRAFT_MRI, DRAFT_XRAY)
    chosen = draft_order_context("order-select", path, ["ServiceRequest/draft-xray-1"], "p1")
    assert chosen["selections"] == ["ServiceRequest/draft-xray-1"]
    with pytest.raises(DraftOrderError, match="not among the draft orders"):
        draft_order_context("order-select", path, ["ServiceRequest/elsewhere"], "p1")
    with pytest.raises(DraftOrderError, match="order-select only"):
        draft_order_context("order-sign", path, ["ServiceRequest/draft-mri-1"], "p1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not JSON"),
        (b'{"resourceType": "Parameters"}', "is not a FHIR Bundle"),
        (b'{"resourceType": "Bundle"}', "not a valid FHIR R4 Bundle"),  # type is required
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nonsense"}}]}',
            "not a valid FHIR R4 Bundle",
        ),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {'
            b'"resourceType": "ServiceRequest", "status": "draft", "intent": "order",'
            b' "subject": {"reference": "Patient/p1"}}}]}',
            "needs a resource with an id",
        ),
        (b'{"resourceType": "Bundle", "type": "collection"}', "holds no draft order"),
    ],
)
def test_bad_draft_orders_are_messages(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "drafts.json"
    path.write_bytes(content)
    with pytest.raises(DraftOrderError, match=message):
        draft_order_context("order-sign", path, None, "p1")


def test_draft_orders_of_another_patient_are_refused(tmp_path: Path) -> None:
    other = {**DRAFT_MRI, "subject": {"reference": "Patient/someone-else"}}
    with pytest.raises(DraftOrderError, match="is for Patient/someone-else, not Patient/p1"):
        draft_order_context("order-sign", draft_orders(tmp_path, other), None, "p1")


def test_order_hook_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["call", "--service", "http://127.0.0.1:9", "--patient", "p1", "--fhir-server", "http://127.0.0.1:9/fhir"]
    assert main([*base, "--hook", "order-sign"]) == FAILURE
    assert "--hook order-sign needs --draft-orders" in capsys.readouterr().err
    assert main([*base, "--draft-orders", str(tmp_path / "missing.json")]) == FAILURE
    assert "are for order-select and order-sign only" in capsys.readouterr().err
    assert main([*base, "--hook", "order-select", "--draft-orders", str(tmp_path / "missing.json")]) == FAILURE
    assert "cannot read the draft orders" in capsys.readouterr().err


def test_token_mints_a_jwt_the_public_key_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "client.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    audience = f"{SERVICE}/cds-services/some-service"
    jwks = tmp_path / "jwks.json"
    assert (
        main(
            [
                "token",
                "--signing-key",
                str(key),
                "--issuer",
                "https://ehr.test",
                "--audience",
                audience,
                "--jwks-out",
                str(jwks),
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    (public,) = jwt.PyJWKSet.from_dict(orjson.loads(jwks.read_bytes())).keys
    claims = jwt.decode(token, public.key, algorithms=["ES384"], audience=audience, issuer="https://ehr.test")
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert jwt.get_unverified_header(token)["kid"] == public.key_id


def test_token_with_an_unreadable_key_fails_plainly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["token", "--signing-key", str(tmp_path / "nope.pem"), "--issuer", "i", "--audience", SERVICE])
    assert code == FAILURE
    assert "cannot read the signing key" in capsys.readouterr().err


def test_the_cli_offers_every_hook_the_service_answers() -> None:
    assert CLI_HOOKS == HOOKS

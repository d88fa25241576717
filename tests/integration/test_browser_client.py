"""A browser CDS Client against the running service: real Chromium, real uvicorn, real FHIR server.

Debian's ``chromium`` (headless, driven by Playwright; never ``playwright install``) opens a
page of our own (``browser_client/``), served by this test as the hospital's EHR at
``http://ehr.hospital.test:<port>`` (Chromium maps the name to 127.0.0.1). The page does what
a browser CDS Client does: discovery, the prefetch templates filled with the context and run
against the sandbox FHIR server with its token, the hook posted cross-origin with a client
JWT (so every call is CORS-preflighted), the cards rendered, a suggestion clicked and the
acceptance posted as feedback. The service admits that origin because it is configured to
(``MSCC_CORS__ALLOW_ORIGINS``), as a hospital would: development mode's own allowance covers
only localhost origins. Its client JWTs carry a ``jku`` that is on no allowlist, as the CDS
Hooks Sandbox's do: the issuer's pinned JWK Set verifies them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration.conftest import Sandbox, ServiceProcess, service_process
from tests.servicepaths import service_path

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
PAGE_DIR = Path(__file__).resolve().parent / "browser_client"
EHR_HOST = "ehr.hospital.test"
#: an origin the service was not configured for
STRANGER_HOST = "elsewhere.example.test"
ISSUER = "https://ehr.hospital.test"
KID = "ehr-browser-key-1"
SCENARIO_PATIENT = "s01-patient"
REFERENCE_TIME = "2026-06-01T10:00:00+01:00"


@dataclass(frozen=True)
class EhrPage:
    """The test's EHR web server: the page, and client JWTs signed with the EHR's key."""

    port: int
    jwks: dict[str, Any]

    def origin(self, host: str = EHR_HOST) -> str:
        return f"http://{host}:{self.port}"


def _page_server(key: ec.EllipticCurvePrivateKey, jku: str) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(PAGE_DIR), **kwargs)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                super().do_GET()
                return
            (audience,) = parse_qs(url.query)["aud"]
            now = int(time.time())
            claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
            token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": KID, "typ": "JWT", "jku": jku})
            body = token.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def ehr_page() -> Iterator[EhrPage]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": KID, "alg": "ES384", "use": "sig"}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _page_server(key, f"http://{EHR_HOST}/.well-known/jwks.json"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield EhrPage(port=server.server_address[1], jwks={"keys": [jwk]})
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser_service(
    sandbox: Sandbox, ehr_page: EhrPage, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The service (uvicorn) configured for the EHR's origin and its pinned key."""
    with service_process(
        sandbox,
        tmp_path_factory.mktemp("browser-service"),
        service_env,
        MSCC_CORS__ALLOW_ORIGINS=orjson.dumps([ehr_page.origin()]).decode(),
        MSCC_AUTH__ISSUERS=orjson.dumps([{"issuer": ISSUER, "jwks": ehr_page.jwks}]).decode(),
    ) as service:
        yield service


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/test does it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[f"--host-resolver-rules=MAP {EHR_HOST} 127.0.0.1, MAP {STRANGER_HOST} 127.0.0.1"],
        )
        try:
            yield launched
        finally:
            launched.close()


def open_client(browser: Browser, origin: str, service: ServiceProcess, sandbox: Sandbox) -> Page:
    query = urlencode(
        {
            "service": service.url,
            "fhir": sandbox.base_url,
            "fhirToken": sandbox.token,
            "patient": SCENARIO_PATIENT,
            "user": "Practitioner/onc-reg-07",
            "evaluationTime": REFERENCE_TIME,
        }
    )
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(f"{origin}/index.html?{query}")
    return page


def stored_feedback(store: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(store) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT service_id, card_uuid, outcome, accepted_suggestions, known_card FROM feedback"
        ).fetchall()
    return [dict(row) for row in rows]


def test_a_browser_client_renders_the_cards_and_sends_feedback(
    browser: Browser,
    ehr_page: EhrPage,
    browser_service: ServiceProcess,
    sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    page = open_client(browser, ehr_page.origin(), browser_service, sandbox)
    try:
        expect(page.locator("#status")).to_have_attribute("data-state", "done", timeout=60_000)
        assert page.locator("#service-id").inner_text() == service_path().rsplit("/", 1)[1]

        card = page.locator(".card")
        expect(card).to_have_count(1)
        assert (card.get_attribute("data-indicator"), card.get_attribute("data-rule")) == ("critical", "R1")
        assert card.locator(".indicator").inner_text().lower() == "critical"
        assert card.locator(".summary").inner_text().startswith("Suspected MSCC")
        assert "Retention of urine" in card.locator(".detail").inner_text()
        suggestion = card.locator("button.suggestion")
        expect(suggestion).to_have_count(1)
        assert suggestion.inner_text() == "Order MRI of the whole spine"
        links = card.locator("a.link")
        assert links.count() >= 1
        assert all(href.startswith("https://") for href in links.evaluate_all("(nodes) => nodes.map((a) => a.href)"))
        page.screenshot(path=str(tmp_path / "browser-client.png"), full_page=True)

        suggestion.click()
        expect(page.locator("#feedback")).to_have_attribute("data-state", "sent", timeout=30_000)
        assert page.locator("#feedback").get_attribute("data-stored") == "1"
        card_uuid, suggestion_uuid = card.get_attribute("data-uuid"), suggestion.get_attribute("data-uuid")
    finally:
        page.close()

    (row,) = stored_feedback(browser_service.store)
    assert (row["service_id"], row["card_uuid"], row["outcome"]) == ("mscc-patient-view", card_uuid, "accepted")
    assert json.loads(row["accepted_suggestions"]) == [suggestion_uuid]
    assert row["known_card"] == 1  # the card this service showed


def test_an_origin_the_service_was_not_configured_for_is_refused_by_the_browser(
    browser: Browser, ehr_page: EhrPage, browser_service: ServiceProcess, sandbox: Sandbox
) -> None:
    page = open_client(browser, ehr_page.origin(STRANGER_HOST), browser_service, sandbox)
    try:
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "error", timeout=30_000)
        assert "Failed to fetch" in status.inner_text()  # the preflight found no Access-Control-Allow-Origin
        assert page.locator(".card").count() == 0
    finally:
        page.close()

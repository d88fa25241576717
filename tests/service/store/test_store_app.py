"""The store inside the app: the lifespan opens it, a hook call leaves an audit record, feedback is kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.audit import AuditEvent
from service.settings import DEFAULT_PROFILES_DIR, Settings
from service.store.audit import write_audit_events
from service.store.db import create_engine
from service.store.install import Store
from service.store.pseudonym import Pseudonymiser
from service.store.schema import SchemaOutdated, current_revision, head_revision
from service.store.settings import StoreSettings
from service.store.tables import audit_cards, audit_events, feedback
from tests.bundles import draft_service_request
from tests.inprocess import serve_app
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

EXAMPLE = DEFAULT_PROFILES_DIR / "examples" / "01-r1-neuro-urinary-retention.json"
PINNED = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
KEY = "a3f1c9e7b5d2f4a6c8e0b1d3f5a7c9e1"


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With a PostgreSQL URL the default audit spool is ./mscc-cds-audit-spool: keep it out of the checkout.
    monkeypatch.chdir(tmp_path)


def settings_for(url: str, **store: object) -> Settings:
    return Settings(mode="development", store={"url": url, "pseudonym_key": KEY, **store})


async def call_app(url: str, requests: list[tuple[str, str, object]]) -> list[httpx.Response]:
    app = create_app(settings_for(url), clock=lambda: PINNED)
    responses = []
    async with serve_app(app, "http://mscc.test") as client:
        for method, path, body in requests:
            responses.append(await client.request(method, path, json=body))
    return responses


async def test_hook_call_is_audited_and_feedback_stored(db_url: str) -> None:
    hook_request = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    app = create_app(settings_for(db_url), clock=lambda: PINNED)
    async with serve_app(app, "http://mscc.test") as client:
        assert (await client.get("/readyz")).json()["status"] == "ok"
        answer = await client.post(service_path(), json=hook_request)
        assert answer.status_code == 200, answer.text
        cards = answer.json()["cards"]
        items = [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-01T09:10:00Z"}
            for card in cards
        ]
        items.append(
            {
                "card": "not-a-card-we-showed",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-06-01T09:11:00Z",
                "overrideReason": {"reason": {"system": "urn:local", "code": "other"}},
            }
        )
        receipt = await client.post(f"{service_path()}/feedback", json={"feedback": items})
        again = await client.post(f"{service_path()}/feedback", json={"feedback": items})

    assert receipt.status_code == 200, receipt.text
    assert receipt.json() == {"stored": len(items), "duplicates": 0, "unknownCards": 1}
    assert again.json() == {"stored": 0, "duplicates": len(items), "unknownCards": 1}
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            record = (await connection.execute(select(audit_events))).mappings().one()
            shown = (await connection.execute(select(audit_cards.c.card_uuid, audit_cards.c.rule_id))).all()
            stored = (await connection.execute(select(feedback.c.card_uuid, feedback.c.known_card))).all()
    finally:
        await engine.dispose()
    assert record["hook_instance"] == hook_request["hookInstance"]
    assert (record["hook"], record["service_id"], record["status"]) == ("patient-view", "mscc-patient-view", 200)
    assert record["patient_pseudonym"] == Pseudonymiser(KEY.encode()).pseudonym("s01-patient")
    assert record["prefetch"]["conditions"] == "present"
    assert set(shown) == {(card["uuid"], card["source"]["topic"]["code"]) for card in cards}
    assert dict(stored) == {**{card["uuid"]: True for card in cards}, "not-a-card-we-showed": False}


#: A draft order that is no spine imaging (a full blood count): the order hooks screen the
#: record as patient-view does, and what they say about spine-imaging drafts is tested elsewhere.
BLOOD_COUNT_DRAFT = draft_service_request(
    "draft-fbc-1", "s01-patient", code={"coding": [{"system": "http://loinc.org", "code": "58410-2"}]}
)


def request_for(hook: str) -> dict[str, object]:
    """Scenario 01 as a call of ``hook``, with the context each hook requires."""
    request = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    request["hook"] = hook
    context = request["context"]
    if hook == "encounter-start":
        context["encounterId"] = "s01-encounter"
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": BLOOD_COUNT_DRAFT}],
        }
    if hook == "order-select":
        context["selections"] = ["ServiceRequest/draft-fbc-1"]
    return request


async def test_each_hook_round_trips_at_its_own_service(db_url: str) -> None:
    app = create_app(settings_for(db_url), clock=lambda: PINNED)
    receipts = {}
    async with serve_app(app, "http://mscc.test") as client:
        discovery = (await client.get("/cds-services")).json()["services"]
        for service in discovery:
            path = f"/cds-services/{service['id']}"
            answer = await client.post(path, json=request_for(service["hook"]))
            assert answer.status_code == 200, answer.text
            (card,) = answer.json()["cards"]
            assert (card["indicator"], card["source"]["topic"]["code"]) == ("critical", "R1")
            accepted = {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-06-01T09:10:00Z",
            }
            receipts[service["id"]] = (await client.post(f"{path}/feedback", json={"feedback": [accepted]})).json()

    assert sorted(receipts) == sorted(
        f"mscc-{hook}" for hook in ("patient-view", "encounter-start", "order-select", "order-sign")
    )
    assert all(receipt == {"stored": 1, "duplicates": 0, "unknownCards": 0} for receipt in receipts.values())
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            audited = (await connection.execute(select(audit_events.c.service_id, audit_events.c.hook))).all()
            stored = (await connection.execute(select(feedback.c.service_id, feedback.c.known_card))).all()
    finally:
        await engine.dispose()
    assert sorted(audited) == sorted((service_id, service_id.removeprefix("mscc-")) for service_id in receipts)
    assert sorted(stored) == sorted((service_id, True) for service_id in receipts)


async def test_a_refused_call_is_audited_with_its_status(db_url: str) -> None:
    hook_request = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    del hook_request["prefetch"]  # no prefetch and no fhirServer: the required data cannot be had

    (answer,) = await call_app(db_url, [("POST", service_path(), hook_request)])

    assert answer.status_code == 412
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            record = (await connection.execute(select(audit_events))).mappings().one()
    finally:
        await engine.dispose()
    assert (record["status"], record["hook_instance"]) == (412, hook_request["hookInstance"])


async def test_start_up_migrates_a_fresh_database(db_url: str) -> None:
    (ready,) = await call_app(db_url, [("GET", "/readyz", None)])

    assert ready.status_code == 200
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_without_migration_an_outdated_database_stops_the_start(db_url: str) -> None:
    app = create_app(settings_for(db_url, migrate_on_start=False))

    with pytest.raises(SchemaOutdated):
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - the lifespan must not get here


async def test_store_readiness_follows_its_life(db_url: str) -> None:
    store = Store(StoreSettings(url=db_url, pseudonym_key=KEY), mode="development")
    assert await store.readiness() == "store not open"

    await store.start()
    try:
        assert await store.readiness() is None
    finally:
        await store.stop()

    assert await store.readiness() == "store not open"


async def test_start_up_purges_expired_records(
    store_engine: AsyncEngine, db_url: str, make_audit_event: Callable[..., AuditEvent]
) -> None:
    now = datetime.now(UTC)
    old = make_audit_event(recorded_at=now - timedelta(days=31), cards=[("old", "R1")])
    recent = make_audit_event(recorded_at=now - timedelta(days=29), cards=[("recent", "R1")])
    await write_audit_events(store_engine, [old, recent], Pseudonymiser(b"k" * 32), "0.1.0")
    store = Store(StoreSettings(url=db_url, pseudonym_key=KEY, retention_days=30), mode="development")

    await store.start()
    await store.stop()

    async with store_engine.connect() as connection:
        assert (await connection.execute(select(audit_cards.c.card_uuid))).scalars().all() == ["recent"]

"""Feedback the store cannot hold answers 400, feedback it cannot store now 503; neither is lost silently.

Through the app, over its HTTP interface, on the real databases; the unreachable database
is a PostgreSQL URL on a loopback port nothing listens on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.app import create_app
from service.settings import DEFAULT_PROFILES_DIR, Settings
from service.store.db import create_engine
from service.store.tables import audit_events, feedback
from tests.inprocess import SettableClock, serve_app
from tests.processes import free_port
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

EXAMPLE = json.loads((DEFAULT_PROFILES_DIR / "examples" / "01-r1-neuro-urinary-retention.json").read_text("utf-8"))
KEY = "a3f1c9e7b5d2f4a6c8e0b1d3f5a7c9e1"
FEEDBACK = f"{service_path()}/feedback"


def settings_for(url: str, spool: Path) -> Settings:
    return Settings(mode="development", store={"url": url, "pseudonym_key": KEY, "spool_dir": spool})


def item(card: str = "card-1", at: str = "2026-06-01T09:10:00Z", **extra: object) -> dict[str, object]:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": at, **extra}


async def feedback_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(select(func.count()).select_from(feedback))).scalar_one()
    finally:
        await engine.dispose()


UNSTORABLE = {
    "a 10 KB card uuid (PostgreSQL's index row limit)": (item(card="c" * 10_000), "feedback.1.card"),
    "a NUL byte in the card uuid": (item(card="card\x00one"), "feedback.1.card"),
    "a control character in the reason's code": (
        item(overrideReason={"reason": {"system": "urn:x", "code": "a\x1bb"}}),
        "feedback.1.overrideReason.reason.code",
    ),
    "a long display": (
        item(overrideReason={"reason": {"system": "urn:x", "code": "c", "display": "d" * 1025}}),
        "feedback.1.overrideReason.reason.display",
    ),
    "an outcomeTimestamp before year 1 in UTC": (item(at="0001-01-01T00:00:00+14:00"), "outcomeTimestamp"),
    "an outcomeTimestamp after year 9999 in UTC": (item(at="9999-12-31T23:59:59-14:00"), "outcomeTimestamp"),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
async def test_feedback_the_store_cannot_hold_answers_400_and_stores_nothing_of_the_batch(
    case: str, db_url: str, tmp_path: Path
) -> None:
    bad, where = UNSTORABLE[case]
    app = create_app(settings_for(db_url, tmp_path / "spool"), clock=SettableClock())
    async with serve_app(app) as client:
        answer = await client.post(FEEDBACK, json={"feedback": [item(card="fine"), bad]})
        fine_alone = await client.post(FEEDBACK, json={"feedback": [item(card="fine")]})

    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(where in issue["diagnostics"] for issue in outcome["issue"]), outcome
    assert "\x00" not in answer.text
    assert fine_alone.json() == {"stored": 1, "duplicates": 0, "unknownCards": 1}
    assert await feedback_rows(db_url) == 1


async def test_with_the_database_unreachable_hooks_answer_feedback_says_503_and_readiness_stays_200(
    tmp_path: Path,
) -> None:
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(settings_for(nowhere, tmp_path / "spool"), clock=SettableClock())
    async with serve_app(app) as client:
        hook = await client.post(service_path(), json=EXAMPLE)
        refused = await client.post(FEEDBACK, json={"feedback": [item()]})
        ready = await client.get("/readyz")

    assert hook.status_code == 200 and hook.json()["cards"]
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "30"
    assert refused.json()["issue"][0]["code"] == "transient"
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["degraded"]["store"].startswith("database unreachable")
    assert "problems" not in body


async def test_the_spool_keeps_the_calls_answered_while_the_database_was_away(tmp_path: Path) -> None:
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    spool = tmp_path / "spool"
    async with serve_app(create_app(settings_for(nowhere, spool), clock=SettableClock())) as client:
        for _ in range(3):
            assert (await client.post(service_path(), json=EXAMPLE)).status_code == 200

    # The same spool folder under a service whose database answers: the records arrive.
    database = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    async with serve_app(create_app(settings_for(database, spool), clock=SettableClock())) as client:
        assert (await client.get("/readyz")).json()["status"] == "ok"
    engine = create_engine(database)
    try:
        async with engine.connect() as connection:
            stored = (await connection.execute(select(audit_events.c.hook_instance))).scalars().all()
    finally:
        await engine.dispose()
    assert stored == [EXAMPLE["hookInstance"]] * 3

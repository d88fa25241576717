"""Faults against a real service process and real databases: every call answered 200 has its audit record.

Each test runs ``python -m service serve`` on loopback, sends a burst of hook calls (each
with its own ``hookInstance``), does something bad (SIGKILL during or after the burst, a
tiny batch size under concurrency, PostgreSQL stopped and started, records the database
refuses), starts the service again where needed, stops it gracefully so that nothing is
in flight, and then counts: the audit records of the calls answered 200 are exactly those
calls, each once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.exc import ProgrammingError

from service.settings import DEFAULT_PROFILES_DIR
from service.store.db import create_engine
from service.store.schema import upgrade
from service.store.tables import audit_events
from tests.processes import free_port, start_service, stop, wait_until_up
from tests.service.store.conftest import PostgresCluster, refuse_hook_instances_starting_with, running_cluster
from tests.servicepaths import service_path

pytestmark = pytest.mark.anyio

EXAMPLE = json.loads((DEFAULT_PROFILES_DIR / "examples" / "01-r1-neuro-urinary-retention.json").read_text("utf-8"))
KEY = "a3f1c9e7b5d2f4a6c8e0b1d3f5a7c9e1"
#: How long the service may take to drain its spool after a restart before a test gives up.
DRAIN_TIMEOUT_S = 90.0


@dataclass
class Burst:
    """What a burst of calls got back: hookInstance -> HTTP status (or None when no answer came)."""

    statuses: dict[str, int | None] = field(default_factory=dict)

    @property
    def answered_200(self) -> set[str]:
        return {instance for instance, status in self.statuses.items() if status == 200}


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    metrics_url: str


def clean_env() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MSCC_") and name.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }


@contextmanager
def service(workdir: Path, db_url: str, **settings: str) -> Iterator[Service]:
    """The service as its own process on ``db_url``, with its spool in ``workdir``; stopped gracefully at the end."""
    port, metrics_port = free_port(), free_port()
    env = clean_env() | {
        "MSCC_MODE": "development",
        "MSCC_LOG_LEVEL": "WARNING",
        "MSCC_METRICS_PORT": str(metrics_port),
        "MSCC_STORE__URL": db_url,
        "MSCC_STORE__PSEUDONYM_KEY": KEY,
        "MSCC_STORE__SPOOL_DIR": str(workdir / "spool"),
        **settings,
    }
    log = workdir / f"service-{port}.log"
    process = start_service(port, env, log, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/readyz", process, log)
        yield Service(url=url, process=process, metrics_url=f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        stop(process)


def sigkill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def hook_call(instance: str) -> dict[str, object]:
    return {**EXAMPLE, "hookInstance": instance}


async def burst(
    url: str,
    instances: list[str],
    *,
    concurrency: int = 8,
    after_each: Callable[[Burst], None] | None = None,
) -> Burst:
    """Post one hook call per instance, ``concurrency`` at a time; connection failures count as unanswered."""
    result = Burst()
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def call(instance: str) -> None:
            async with semaphore:
                try:
                    response = await client.post(service_path(), json=hook_call(instance))
                    result.statuses[instance] = response.status_code
                except httpx.HTTPError:
                    result.statuses[instance] = None
                if after_each is not None:
                    after_each(result)

        await asyncio.gather(*(call(instance) for instance in instances))
    return result


def instances(count: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{uuid.uuid4()}" for _ in range(count)]


async def audited(db_url: str) -> list[str]:
    """The hookInstance of every audit record in the database."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(select(audit_events.c.hook_instance))).scalars())
    finally:
        await engine.dispose()


async def wait_until_audited(db_url: str, expected: set[str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT_S
    while True:
        try:
            if expected <= set(await audited(db_url)):
                return
        except ProgrammingError:
            pass  # the service has not created the tables yet
        if loop.time() > deadline:
            return  # the exact assertion that follows says what is missing
        await asyncio.sleep(0.2)


def assert_each_answered_call_audited_once(records: list[str], answered: set[str], unanswered: int = 0) -> None:
    of_answered = [instance for instance in records if instance in answered]
    assert len(of_answered) == len(answered), f"{len(answered) - len(set(of_answered))} answered calls not audited"
    assert len(set(of_answered)) == len(of_answered), "an answered call audited twice"
    # Calls cut off by the kill may have been spooled without their answer arriving; nothing else may be there.
    assert len(records) - len(of_answered) <= unanswered


def scrape(metrics_url: str) -> dict[str, float]:
    body = httpx.get(metrics_url, timeout=5).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name.startswith("cds_audit_")
    }


async def wait_for_metrics(metrics_url: str, done: Callable[[dict[str, float]], bool]) -> dict[str, float]:
    """The audit metrics once ``done`` holds for them (or as they are when the drain timeout runs out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT_S
    while not done(metrics := scrape(metrics_url)) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    return metrics


async def test_sigkill_right_after_a_burst_loses_no_answered_call(db_url: str, tmp_path: Path) -> None:
    with service(tmp_path, db_url) as first:
        calls = await burst(first.url, instances(200))
        sigkill(first.process)
    assert len(calls.answered_200) == 200

    with service(tmp_path, db_url):
        await wait_until_audited(db_url, calls.answered_200)

    assert_each_answered_call_audited_once(await audited(db_url), calls.answered_200)


async def test_sigkill_in_the_middle_of_a_burst_loses_no_answered_call(db_url: str, tmp_path: Path) -> None:
    with service(tmp_path, db_url) as first:

        def kill_at_80(progress: Burst) -> None:
            if len(progress.answered_200) == 80 and first.process.poll() is None:
                first.process.send_signal(signal.SIGKILL)

        calls = await burst(first.url, instances(160), after_each=kill_at_80)
        first.process.wait(timeout=10)
    unanswered = sum(1 for status in calls.statuses.values() if status is None)
    assert 80 <= len(calls.answered_200) < 160 and unanswered > 0

    with service(tmp_path, db_url):
        await wait_until_audited(db_url, calls.answered_200)

    assert_each_answered_call_audited_once(await audited(db_url), calls.answered_200, unanswered)


async def test_one_record_per_transaction_under_a_concurrent_burst_loses_nothing(db_url: str, tmp_path: Path) -> None:
    # The old in-memory queue of size 1 dropped most of such a burst; the spool has no queue to fill.
    with service(tmp_path, db_url, MSCC_STORE__AUDIT_BATCH_SIZE="1", MSCC_STORE__AUDIT_FSYNC="always") as one:
        calls = await burst(one.url, instances(200), concurrency=32)
        await wait_until_audited(db_url, calls.answered_200)
        metrics = scrape(one.metrics_url)
    assert len(calls.answered_200) == 200
    assert_each_answered_call_audited_once(await audited(db_url), calls.answered_200)
    assert metrics["cds_audit_records_spooled_total"] == 200
    assert metrics["cds_audit_records_dead_lettered_total"] == 0


async def test_poisoned_records_take_no_other_record_with_them(db_url: str, tmp_path: Path) -> None:
    # A hookInstance must be a UUID, so text the database cannot hold never reaches the audit
    # through it (those calls are answered 400 and not audited); a record the database itself
    # refuses still can: a real trigger refuses hookInstances with this (valid UUID) prefix.
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        await refuse_hook_instances_starting_with(engine, "deadbeef-")
    finally:
        await engine.dispose()
    not_uuids = ["nul-\x00-byte", "control-\x01\x1f\x7f", "long-" + "x" * 10_000, "back\\slash"]
    refused = [f"deadbeef-{str(uuid.uuid4())[9:]}" for _ in range(5)]
    ordinary = instances(150)
    with service(tmp_path, db_url) as one:
        calls = await burst(one.url, ordinary + not_uuids + refused)
        await wait_until_audited(db_url, set(ordinary))
        metrics = await wait_for_metrics(
            one.metrics_url, lambda now: now["cds_audit_records_dead_lettered_total"] == len(refused)
        )

    assert calls.answered_200 == set(ordinary + refused)  # the refused records' calls were answered
    assert [calls.statuses[name] for name in not_uuids] == [400] * len(not_uuids)
    assert sorted(await audited(db_url)) == sorted(ordinary)
    letters = [
        json.loads(line)
        for path in (tmp_path / "spool").glob("dead-letter-*.jsonl")
        for line in path.read_text("utf-8").splitlines()
    ]
    assert sorted(letter["record"]["event"]["hook_instance"] for letter in letters) == sorted(refused)
    assert metrics["cds_audit_records_dead_lettered_total"] == len(letters)
    assert metrics["cds_audit_records_written_total"] == len(ordinary)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster of this module's own, so that stopping it disturbs no other test."""
    with running_cluster() as cluster:
        yield cluster


@pytest.mark.integration
async def test_a_database_outage_loses_no_record_and_feedback_says_503(
    own_postgres: PostgresCluster, tmp_path: Path
) -> None:
    db_url = own_postgres.createdb(f"mscc_outage_{uuid.uuid4().hex[:8]}")
    with service(tmp_path, db_url) as one:
        before = await burst(one.url, instances(20))
        await wait_until_audited(db_url, before.answered_200)
        async with httpx.AsyncClient(base_url=one.url, timeout=30) as client:
            shown = (await client.post(service_path(), json=hook_call(str(uuid.uuid4())))).json()["cards"][0]["uuid"]
            await wait_until_audited(db_url, before.answered_200)
            own_postgres.stop()
            try:
                during = await burst(one.url, instances(50))
                feedback = {
                    "feedback": [{"card": shown, "outcome": "overridden", "outcomeTimestamp": "2026-06-01T09:10:00Z"}]
                }
                refused = await client.post(f"{service_path()}/feedback", json=feedback)
                ready = await wait_for_degraded(client)
                metrics = scrape(one.metrics_url)
            finally:
                own_postgres.start()
            await wait_until_audited(db_url, during.answered_200)
            accepted = await client.post(f"{service_path()}/feedback", json=feedback)
        after = scrape(one.metrics_url)

    assert len(during.answered_200) == 50  # screening carried on
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "30")
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert "database unreachable" in ready.json()["degraded"]["store"]
    assert metrics["cds_audit_spool_backlog"] >= 50 and metrics["cds_audit_database_up"] == 0
    assert metrics["cds_audit_spool_oldest_age_seconds"] > 0
    assert (accepted.status_code, accepted.json()["stored"]) == (200, 1)
    assert (after["cds_audit_spool_backlog"], after["cds_audit_database_up"]) == (0, 1)
    records = await audited(db_url)
    assert_each_answered_call_audited_once(
        records,
        before.answered_200 | during.answered_200,
        unanswered=1,  # the call that showed the card
    )


async def wait_for_degraded(client: httpx.AsyncClient) -> httpx.Response:
    """``/readyz`` once the writer has noticed the outage (its next write or ping)."""
    for _ in range(150):
        ready = await client.get("/readyz")
        if ready.json().get("status") != "ok":
            return ready
        await asyncio.sleep(0.2)
    return ready


@pytest.mark.integration
async def test_a_database_down_at_start_up_does_not_stop_screening_and_is_caught_up(
    own_postgres: PostgresCluster, tmp_path: Path
) -> None:
    db_url = own_postgres.createdb(f"mscc_late_{uuid.uuid4().hex[:8]}")  # empty: migrated once it answers
    own_postgres.stop()
    try:
        with service(tmp_path, db_url) as one:
            calls = await burst(one.url, instances(10))
            ready = httpx.get(f"{one.url}/readyz", timeout=5)
            metrics = scrape(one.metrics_url)
            own_postgres.start()
            await wait_until_audited(db_url, calls.answered_200)
    finally:
        if not (own_postgres.data / "postmaster.pid").exists():
            own_postgres.start()
    assert len(calls.answered_200) == 10
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert metrics["cds_audit_spool_backlog"] == 10
    assert_each_answered_call_audited_once(await audited(db_url), calls.answered_200)

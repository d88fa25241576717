"""The audit trail: spooled on disk before the hook answers, moved into the database once, bad records set aside."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cds_hooks.errors import ServiceUnavailable
from service.audit import AuditEvent
from service.store.audit import AuditTrail, AuditWriter, write_audit_events
from service.store.pseudonym import Pseudonymiser
from service.store.schema import upgrade
from service.store.spool import FsyncPolicy, Spool
from service.store.tables import audit_cards, audit_events, audit_rule_results, metadata
from tests.service.store.conftest import refuse_hook_instances_starting_with

pytestmark = pytest.mark.anyio

AuditEventFactory = Callable[..., AuditEvent]
KEY = b"0123456789abcdef0123456789abcdef"
RAW_PATIENT_ID = "s07-patient-Zq9"


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def hook_instances(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(audit_events.c.hook_instance))).scalars())


@asynccontextmanager
async def audit_trail(
    engine: AsyncEngine,
    folder: Path,
    *,
    fsync: FsyncPolicy = "never",
    batch_size: int = 200,
    retry_attempts: int = 3,
    start_writer: bool = True,
) -> AsyncIterator[tuple[AuditTrail, AuditWriter, Spool]]:
    """A spool in ``folder`` with its trail and writer, as one process of the service holds them."""
    spool = Spool(folder, fsync=fsync)
    spool.open()
    trail = AuditTrail(spool, Pseudonymiser(KEY), service_version="0.1.0")
    writer = AuditWriter(engine, spool, batch_size=batch_size, retry_attempts=retry_attempts)
    if start_writer:
        writer.start()
    try:
        yield trail, writer, spool
    finally:
        await writer.stop(timeout=10)
        spool.close()


def dead_letters(folder: Path) -> list[dict[str, object]]:
    lines = []
    for path in sorted(folder.glob("dead-letter-*.jsonl")):
        lines.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return lines


async def test_one_record_holds_the_whole_invocation(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    event = make_audit_event(
        patient_id=RAW_PATIENT_ID,
        cards=[("card-a", "R1"), ("card-b", "R6b")],
        rules=[("R1", "fired"), ("R2", "suppressed"), ("R6b", "fired"), ("R7", "insufficient_data")],
        status=200,
    )

    (audit_id,) = await write_audit_events(store_engine, [event], Pseudonymiser(KEY), "0.1.0")

    async with store_engine.connect() as connection:
        record = (await connection.execute(select(audit_events))).mappings().one()
        rules = (await connection.execute(select(audit_rule_results).order_by("position"))).mappings().all()
        cards = (await connection.execute(select(audit_cards).order_by("position"))).mappings().all()
    assert record["audit_id"] == audit_id
    assert record["recorded_at"] == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert record["hook_instance"] == event.hook_instance
    assert (record["service_id"], record["hook"]) == ("mscc-patient-view", "patient-view")
    assert (record["service_version"], record["knowledge_version"]) == ("0.1.0", "0123456789abcdef")
    assert record["prefetch"] == {"patient": "present", "conditions": "present", "labs": "null"}
    assert record["fhir_queries"] == {"imagingStudies": 3}
    assert (record["client_iss"], record["client_tenant"], record["client_jti"]) == (
        "https://ehr.example.org",
        "hospital-a",
        "jti-1",
    )
    assert (record["latency_ms"], record["status"]) == (12.5, 200)
    assert record["patient_pseudonym"] == hmac.new(KEY, RAW_PATIENT_ID.encode(), hashlib.sha256).hexdigest()
    assert [(rule["rule_id"], rule["rule_version"], rule["result"]) for rule in rules] == [
        ("R1", "1.0.0", "fired"),
        ("R2", "1.0.0", "suppressed"),
        ("R6b", "1.0.0", "fired"),
        ("R7", "1.0.0", "insufficient_data"),
    ]
    assert [(card["card_uuid"], card["rule_id"], card["indicator"]) for card in cards] == [
        ("card-a", "R1", "critical"),
        ("card-b", "R6b", "critical"),
    ]


async def test_the_raw_patient_id_is_in_no_table_and_not_in_the_spool(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    async with audit_trail(store_engine, tmp_path / "spool") as (trail, writer, _):
        await trail.record(make_audit_event(patient_id=RAW_PATIENT_ID, cards=[("card-a", "R1")]))
        assert await writer.flush(timeout=10)
        on_disk = b"".join(path.read_bytes() for path in (tmp_path / "spool").iterdir() if path.is_file())

    assert RAW_PATIENT_ID.encode() not in on_disk
    async with store_engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in (await connection.execute(select(table))).all():
                assert not any(RAW_PATIENT_ID in str(value) for value in row), table.name
    assert await count(store_engine, audit_events) == 1


async def test_an_event_without_patient_has_no_pseudonym(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory
) -> None:
    await write_audit_events(store_engine, [make_audit_event(patient_id=None, status=400)], Pseudonymiser(KEY), "x")

    async with store_engine.connect() as connection:
        record = (await connection.execute(select(audit_events))).mappings().one()
    assert record["patient_pseudonym"] is None
    assert record["status"] == 400


@pytest.mark.parametrize("fsync", ["always", "never"])
async def test_the_writer_stores_each_spooled_record_once(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path, fsync: FsyncPolicy
) -> None:
    async with audit_trail(store_engine, tmp_path / "spool", fsync=fsync, batch_size=7) as (trail, writer, _):
        for number in range(25):
            await trail.record(
                make_audit_event(
                    hook_instance=f"call-{number}", cards=[(f"card-{number}", "R1")], rules=[("R1", "fired")]
                )
            )
        assert await writer.flush(timeout=10)
        snapshot = writer.snapshot()

    assert sorted(await hook_instances(store_engine)) == sorted(f"call-{number}" for number in range(25))
    assert await count(store_engine, audit_cards) == 25
    assert await count(store_engine, audit_rule_results) == 25
    assert (snapshot.spooled, snapshot.written, snapshot.dead_lettered, snapshot.backlog) == (25, 25, 0, 0)
    assert snapshot.oldest_age_s == 0.0


async def test_records_left_by_a_dead_process_are_adopted_and_written(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    # A process that spooled 30 records and died before its writer moved any of them.
    async with audit_trail(store_engine, folder, start_writer=False) as (trail, writer, spool):
        for number in range(30):
            await trail.record(make_audit_event(hook_instance=f"orphan-{number}"))
        assert writer.snapshot().backlog == 30
    assert await count(store_engine, audit_events) == 0

    async with audit_trail(store_engine, folder) as (_, writer, spool):
        assert spool.backlog == 30  # adopted at open, before anything was written
        assert await writer.flush(timeout=10)
        assert writer.snapshot().written == 30

    assert sorted(await hook_instances(store_engine)) == sorted(f"orphan-{number}" for number in range(30))
    assert not list(folder.glob("audit-*.spool"))[1:]  # only the last process's own, empty segment may remain


async def test_a_segment_whose_progress_was_lost_is_sent_again_without_duplicates(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    async with audit_trail(store_engine, folder) as (trail, writer, spool):
        for number in range(12):
            await trail.record(make_audit_event(hook_instance=f"call-{number}"))
        assert await writer.flush(timeout=10)
        # Keep the segment for adoption: a crash after the commit, before the progress was saved.
        (done,) = folder.glob("audit-*.done")
        done.write_text("0", encoding="ascii")
        spool.close()  # releases the lock, as the process's death would

    async with audit_trail(store_engine, folder) as (_, writer, _):
        assert await writer.flush(timeout=10)
        assert writer.snapshot().written == 12  # confirmed again: already there, skipped by the database

    assert sorted(await hook_instances(store_engine)) == sorted(f"call-{number}" for number in range(12))


async def test_a_record_the_database_refuses_is_dead_lettered_and_the_others_are_written(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    await refuse_hook_instances_starting_with(store_engine, "poison")
    folder = tmp_path / "spool"
    names = [f"poison-{number}" if number % 10 == 3 else f"call-{number}" for number in range(50)]
    async with audit_trail(store_engine, folder, batch_size=20) as (trail, writer, _):
        for name in names:
            await trail.record(make_audit_event(hook_instance=name))
        await writer.flush(timeout=20)
        snapshot = writer.snapshot()

    assert sorted(await hook_instances(store_engine)) == sorted(name for name in names if name.startswith("call"))
    letters = dead_letters(folder)
    assert sorted(letter["record"]["event"]["hook_instance"] for letter in letters) == sorted(  # type: ignore[index]
        name for name in names if name.startswith("poison")
    )
    assert all(str(letter["reason"]).startswith("refused by the database") for letter in letters)
    assert (snapshot.written, snapshot.dead_lettered, snapshot.backlog) == (45, 5, 0)


@pytest.mark.integration
async def test_a_transient_failure_is_retried_a_bounded_number_of_times(
    postgres_cluster: object, tmp_path: Path, make_audit_event: AuditEventFactory
) -> None:
    from service.store.db import create_engine

    url = postgres_cluster.createdb(f"mscc_transient_{os.getpid()}")  # type: ignore[attr-defined]
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE FUNCTION always_busy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.hook_instance = 'busy' THEN RAISE EXCEPTION 'try again' USING ERRCODE = '40001'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            await connection.execute(
                text("CREATE TRIGGER busy BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION always_busy()")
            )
        async with audit_trail(engine, tmp_path / "spool", retry_attempts=2) as (trail, writer, _):
            for name in ("before", "busy", "after"):
                await trail.record(make_audit_event(hook_instance=name))
            await writer.flush(timeout=20)
            snapshot = writer.snapshot()
        assert sorted(await hook_instances(engine)) == ["after", "before"]
        (letter,) = dead_letters(tmp_path / "spool")
        assert str(letter["reason"]).startswith("failed 2 times (transient)")
        assert (snapshot.written, snapshot.dead_lettered) == (2, 1)
    finally:
        await engine.dispose()


async def test_a_database_without_the_schema_keeps_records_in_the_spool_not_in_dead_letters(
    engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    async with audit_trail(engine, folder) as (trail, writer, _):  # not migrated: every write fails
        for number in range(5):
            await trail.record(make_audit_event(hook_instance=f"call-{number}"))
        assert not await writer.flush(timeout=1)
        snapshot = writer.snapshot()
    assert (snapshot.written, snapshot.dead_lettered, snapshot.backlog) == (0, 0, 5)
    assert snapshot.database_reachable is False
    assert snapshot.oldest_age_s > 0

    await upgrade(engine)
    async with audit_trail(engine, folder) as (_, writer, _):
        assert await writer.flush(timeout=10)
    assert sorted(await hook_instances(engine)) == [f"call-{number}" for number in range(5)]
    assert dead_letters(folder) == []


async def test_control_characters_and_oversize_text_reach_the_database_escaped_and_capped(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    nasty = "a\x00b\x1fc\x7fd\\e\ud800f"
    async with audit_trail(store_engine, tmp_path / "spool") as (trail, writer, _):
        await trail.record(make_audit_event(hook_instance=nasty))
        await trail.record(make_audit_event(hook_instance="x" * 10_000))
        assert await writer.flush(timeout=10)
        assert writer.snapshot().dead_lettered == 0

    stored = sorted(await hook_instances(store_engine))
    assert stored == ["a\\x00b\\x1fc\\x7fd\\\\e\\ud800f", "x" * 256 + "…[+9744 chars]"]


async def test_a_spool_that_cannot_be_written_answers_503_and_readiness_says_so(
    store_engine: AsyncEngine, make_audit_event: AuditEventFactory, tmp_path: Path
) -> None:
    async with audit_trail(store_engine, tmp_path / "spool") as (trail, _, spool):
        (spool_id,) = _own_ids(spool)
        segment = spool.segment(spool_id)
        assert segment is not None
        full = os.open("/dev/full", os.O_WRONLY)
        saved = os.dup(segment.fd)
        os.dup2(full, segment.fd)  # every write now fails with ENOSPC, as on a full disk
        try:
            with pytest.raises(ServiceUnavailable) as refused:
                await trail.record(make_audit_event())
        finally:
            os.dup2(saved, segment.fd)
            os.close(saved)
            os.close(full)
        assert refused.value.headers["Retry-After"] == "30"
        assert spool.broken == "audit spool not writable"
        # The disk has room again (the test's file system is not full): writable once more.
        assert spool.writable() is None
        await trail.record(make_audit_event())
        assert spool.spooled == 1


def _own_ids(spool: Spool) -> list[str]:
    return [path.name[len("audit-") : -len(".spool")] for path in spool.folder.glob("audit-*.spool")]

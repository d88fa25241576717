"""Store fixtures: every store test runs on SQLite and on a real, throwaway PostgreSQL.

The PostgreSQL cluster is made once per session with ``initdb`` in a temporary folder
and served by ``pg_ctl`` on a free loopback port (TCP on 127.0.0.1 only, its Unix
socket in the same folder); each test gets a database of its own. PostgreSQL refuses to
run as root, so under root the cluster belongs to the ``postgres`` user (``runuser``).
``.ci/run`` installs Debian's postgresql when ``initdb`` is missing.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cds_hooks.models import FeedbackItem
from service.audit import AuditEvent, CardRecord
from service.clinical.outcome import RuleOutcome
from service.store.db import create_engine
from service.store.schema import upgrade


@dataclass(frozen=True)
class PostgresCluster:
    bindir: Path
    port: int
    run_as: list[str]
    data: Path
    log: Path
    options: str

    def createdb(self, name: str) -> str:
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ],
            check=True,
            capture_output=True,
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self._pg_ctl("-l", str(self.log), "-o", self.options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown: open connections are closed, as in a database restart or failover."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def _pg_ctl(self, *arguments: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *arguments],
            check=True,
            capture_output=True,
        )


@contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on a free loopback port, removed afterwards."""
    bindir = _postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="mscc-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = _free_port()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    # fsync off: a throwaway cluster need not survive a power cut, and tests run faster.
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    cluster = PostgresCluster(bindir=bindir, port=port, run_as=run_as, data=data, log=log, options=options)
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _postgres_bindir() -> Path:
    candidates = []
    if pg_config := shutil.which("pg_config"):
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(result.stdout.strip()))
    candidates.extend(Path(path) for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql (see .ci/run)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as cluster:
        yield cluster


_database_numbers = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.createdb(f"mscc_test_{os.getpid()}_{next(_database_numbers)}")


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database."""
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def store_engine(engine: AsyncEngine) -> AsyncEngine:
    """An engine on a database migrated to head."""
    await upgrade(engine)
    return engine


# -- builders -------------------------------------------------------------------------------------

AuditEventFactory = Callable[..., AuditEvent]
FeedbackFactory = Callable[..., FeedbackItem]


def build_audit_event(
    *,
    cards: Sequence[tuple[str, str]] = (),
    rules: Sequence[tuple[str, str]] = (),
    patient_id: str | None = "s01-patient",
    recorded_at: datetime | None = None,
    hook_instance: str = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    status: int = 200,
) -> AuditEvent:
    """An audit event with ``cards`` as (uuid, rule id) and ``rules`` as (rule id, result)."""
    return AuditEvent(
        recorded_at=recorded_at or datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
        hook_instance=hook_instance,
        service_id="mscc-patient-view",
        hook="patient-view",
        knowledge_version="0123456789abcdef",
        patient_id=patient_id,
        rules=[RuleOutcome(rule_id=rule_id, rule_version="1.0.0", result=result) for rule_id, result in rules],
        cards=[CardRecord(uuid=uuid, rule_id=rule_id, indicator="critical") for uuid, rule_id in cards],
        prefetch={"patient": "present", "conditions": "present", "labs": "null"},
        fhir_queries={"imagingStudies": 3},
        client_iss="https://ehr.example.org",
        client_tenant="hospital-a",
        client_jti="jti-1",
        latency_ms=12.5,
        status=status,
    )


def build_feedback(
    card: str,
    outcome: str = "overridden",
    *,
    at: str = "2026-06-01T09:05:00Z",
    reason: dict[str, str] | None = None,
    comment: str | None = None,
) -> FeedbackItem:
    item: dict[str, object] = {"card": card, "outcome": outcome, "outcomeTimestamp": at}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": f"{card}-suggestion"}]
    if reason is not None or comment is not None:
        override: dict[str, object] = {}
        if reason is not None:
            override["reason"] = reason
        if comment is not None:
            override["userComment"] = comment
        item["overrideReason"] = override
    return FeedbackItem.model_validate(item)


@pytest.fixture
def make_audit_event() -> AuditEventFactory:
    return build_audit_event


@pytest.fixture
def make_feedback() -> FeedbackFactory:
    return build_feedback


async def refuse_hook_instances_starting_with(engine: AsyncEngine, prefix: str) -> None:
    """A trigger that makes the database refuse some audit records: a real refusal, on each backend."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.hook_instance LIKE '{prefix}%' THEN RAISE EXCEPTION 'poisoned record'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            )
        else:
            await connection.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON audit_events "
                    f"WHEN NEW.hook_instance LIKE '{prefix}%' BEGIN SELECT RAISE(ABORT, 'poisoned record'); END"
                )
            )

"""The async engine: one per process, tuned per backend, and write transactions that do not deadlock.

SQLite: Python's sqlite3 driver issues ``BEGIN`` itself, lazily and only before DML,
which breaks transactional DDL and lets two writers that both read first deadlock
("database is locked" at once, the busy timeout never applies). The engine therefore
takes over ``BEGIN`` (the SQLAlchemy recipe for sqlite3/aiosqlite) and opens write
transactions with ``BEGIN IMMEDIATE``, so concurrent writers queue on the busy timeout
instead. WAL lets readers (reports, readiness) carry on while one writer writes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["create_engine", "display_url", "insert_skipping_conflicts", "sqlite_file", "write_transaction"]

#: Execution option read by the SQLite ``begin`` hook: true for ``BEGIN IMMEDIATE``.
_SQLITE_WRITE = "mscc_sqlite_write"
#: How long a SQLite writer waits for another one before failing: writes here take
#: milliseconds, so 15 s only runs out when something is badly wrong.
_SQLITE_BUSY_TIMEOUT_S = 15.0


def display_url(url: str | URL) -> str:
    """The URL without its password, safe for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url`` (``sqlite+aiosqlite`` or ``postgresql+asyncpg``); connects lazily."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pool_pre_ping: a database restarted (failover, maintenance) under a long-running
        # service would otherwise hand out dead connections once each.
        return create_async_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    _create_parent_folder(parsed)
    engine = create_async_engine(parsed, hide_parameters=True, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})
    _take_over_sqlite_transactions(engine, in_memory=_is_memory(parsed))
    return engine


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that will write: takes SQLite's write lock up front, plain ``BEGIN`` elsewhere."""
    async with engine.execution_options(**{_SQLITE_WRITE: True}).begin() as connection:
        yield connection


def insert_skipping_conflicts(
    connection: AsyncConnection, table: Table, index_elements: list[str] | None = None
) -> postgresql.Insert | sqlite.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect: a row whose key is stored already is skipped.

    Without ``index_elements`` any unique constraint or primary key counts as the conflict.
    """
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=index_elements)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for in-memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or _is_memory(parsed) or not parsed.database:
        return None
    if parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def _create_parent_folder(url: URL) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _enable_wal(cursor: Any) -> None:
    """Switch the database file to WAL once; it stays so for every later connection.

    The switch needs the file to itself and SQLite answers "database is locked" at once,
    without its busy timeout, when another connection opens at the same moment (several
    replicas migrating together). So it is retried, within the same busy timeout.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _take_over_sqlite_transactions(engine: AsyncEngine, *, in_memory: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        # None: the driver stops emitting BEGIN; the "begin" hook below does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                _enable_wal(cursor)
                # WAL is safe with NORMAL: a power cut may lose the last commits, never corrupt.
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(_SQLITE_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

"""Alembic environment of the store.

Three ways in: on the caller's connection (``config.attributes["connection"]``, used by
:func:`service.store.schema.upgrade` inside its transaction and lock); on an engine of
its own (the ``alembic`` command line: the URL comes from ``-x db=URL`` or
MSCC_STORE__URL); or offline (``--sql``, :func:`service.store.schema.upgrade_sql`),
printing SQL for a database administrator to review.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from service.store.db import create_engine, write_transaction
from service.store.tables import metadata


def _url() -> str:
    given = context.config.attributes.get("db") or context.get_x_argument(as_dictionary=True).get("db")
    if isinstance(given, str) and given:
        return given
    from service.settings import load_settings

    return load_settings().store.url.get_secret_value()


def _migrate(connection: Connection) -> None:
    # Batch mode: SQLite cannot ALTER most things, Alembic then copies the table instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_with_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with write_transaction(engine) as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def _run() -> None:
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _migrate(connection)
    else:
        asyncio.run(_migrate_with_own_engine(_url()))


_run()

"""The database schema's version: upgrade it to the code's head, or check that it is there.

Migrations run inside one write transaction (PostgreSQL and SQLite both have
transactional DDL), so a failed upgrade leaves the schema as it was. On PostgreSQL an
advisory lock serialises replicas that start together: the second waits, then finds
the schema current and does nothing.
"""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import MsccError
from service.store.db import write_transaction

__all__ = [
    "ALEMBIC_INI",
    "SchemaOutdated",
    "current_revision",
    "head_revision",
    "require_head",
    "upgrade",
    "upgrade_sql",
]

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
_MIGRATIONS = Path(__file__).with_name("migrations")
#: Arbitrary, fixed: the advisory lock id every mscc-cds process uses for migrations.
_MIGRATION_LOCK_ID = 0x6D736363  # "mscc"


class SchemaOutdated(MsccError, RuntimeError):
    """The database is not at the revision this code needs, and was not migrated at start-up."""


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    # Explicit, so that the configuration holds wherever the package is installed.
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise RuntimeError("the store has no migrations")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; ``None`` for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def upgrade(engine: AsyncEngine) -> None:
    """``alembic upgrade head``, in one transaction; a no-op when the schema is current."""
    async with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        await connection.run_sync(_upgrade_on)


def upgrade_sql(url: str) -> str:
    """The SQL that brings an empty database to head, for review (Alembic's offline mode)."""
    config = alembic_config()
    config.output_buffer = io.StringIO()
    config.attributes["db"] = url
    command.upgrade(config, "head", sql=True)
    return config.output_buffer.getvalue()


async def require_head(engine: AsyncEngine) -> None:
    """Raise :class:`SchemaOutdated` unless the database is at this code's head revision."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutdated(
            f"the store's schema is at revision {current or '(empty)'}, this release needs {head}: "
            "run `mscc-cds migrate` (or set MSCC_STORE__MIGRATE_ON_START=true)"
        )


def _upgrade_on(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")

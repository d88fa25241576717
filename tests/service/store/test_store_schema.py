"""Migrations: from an empty database to head, the same schema as tables.py, safe to run twice."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import create_engine
from service.store.schema import (
    SchemaOutdated,
    alembic_config,
    current_revision,
    head_revision,
    require_head,
    upgrade,
    upgrade_sql,
)
from service.store.tables import metadata

pytestmark = pytest.mark.anyio

TABLES = {"audit_events", "audit_rule_results", "audit_cards", "feedback"}


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_migrations_apply_from_an_empty_database(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None
    assert not TABLES & await table_names(engine)

    await upgrade(engine)

    assert await current_revision(engine) == head_revision()
    assert TABLES <= await table_names(engine)
    await require_head(engine)


async def test_migrated_schema_is_the_one_the_code_declares(store_engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with store_engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_upgrading_a_current_schema_changes_nothing(store_engine: AsyncEngine) -> None:
    await upgrade(store_engine)
    assert await current_revision(store_engine) == head_revision()


async def test_replicas_migrating_at_once_all_succeed(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        assert await current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            await engine.dispose()


async def test_downgrade_to_base_and_back(store_engine: AsyncEngine) -> None:
    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with store_engine.begin() as connection:
        await connection.run_sync(downgrade)
    assert not TABLES & await table_names(store_engine)

    await upgrade(store_engine)
    assert TABLES <= await table_names(store_engine)


async def test_an_unmigrated_database_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(SchemaOutdated, match="mscc-cds migrate"):
        await require_head(engine)


def test_upgrade_sql_is_offered_for_review(db_url: str) -> None:
    sql = upgrade_sql(db_url)
    for table in TABLES:
        assert f"CREATE TABLE {table}" in sql
    assert "uq_feedback_card_uuid_outcome_outcome_timestamp" in sql

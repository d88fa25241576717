"""``mscc-cds migrate``: bring the store's schema to this release's head (``alembic upgrade head``)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.cli.exitcodes import FAILURE, OK
from service.store.db import create_engine, display_url
from service.store.schema import current_revision, upgrade, upgrade_sql

__all__ = ["HELP", "add_arguments", "run", "store_url"]

HELP = "Create or upgrade the feedback and audit store's tables (run once per release in production)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="database URL (default: MSCC_STORE__URL)")
    parser.add_argument(
        "--sql", action="store_true", help="print the SQL that creates the schema instead of running it"
    )


def store_url(given: str | None) -> str:
    """``--db`` when given, else the configured store (settings are only read when needed)."""
    if given:
        return given
    from service.settings import load_settings

    return load_settings().store.url.get_secret_value()


def run(args: argparse.Namespace) -> int:
    url = store_url(args.db)
    if args.sql:
        print(upgrade_sql(url), end="")
        return OK
    try:
        revision = asyncio.run(_migrate(url))
    except Exception as exc:  # the operator needs the reason, not a traceback
        print(f"mscc-cds migrate: {display_url(url)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILURE
    print(f"store {display_url(url)} is at revision {revision}")
    return OK


async def _migrate(url: str) -> str | None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()

"""``mscc-cds migrate``: bring the store's schema to this release's head (``alembic upgrade head``)."""

from __future__ import annotations

import argparse
import sys

from service.cli.configuration import load_cli_settings
from service.cli.exitcodes import FAILURE, OK

__all__ = ["EXIT_CODES", "HELP", "add_arguments", "run", "store_url"]

HELP = "Create or upgrade the feedback and audit store's tables (run once per release in production)."
EXIT_CODES = {0: "the store is at this release's schema", 1: "the database is unreachable or the upgrade failed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="database URL (default: MSCC_STORE__URL)")
    parser.add_argument(
        "--sql", action="store_true", help="print the SQL that creates the schema instead of running it"
    )


def store_url(given: str | None) -> str:
    """``--db`` when given, else the store ``serve`` uses (MSCC_STORE__URL, /run/secrets, default)."""
    if given:
        return given
    return load_cli_settings().store.url.get_secret_value()


def run(args: argparse.Namespace) -> int:
    import asyncio

    from service.store.db import display_url
    from service.store.schema import upgrade_sql

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
    from service.store.db import create_engine
    from service.store.schema import current_revision, upgrade

    engine = create_engine(url)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()

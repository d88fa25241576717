"""``mscc-cds report``: the alert-fatigue view for clinical safety committees (text table, HTML page, PNG chart)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.exitcodes import FAILURE, OK, USAGE
from service.cli.migrate import store_url

if TYPE_CHECKING:
    from service.store.report import Report

__all__ = ["EXIT_CODES", "HELP", "add_arguments", "run"]

HELP = "Per rule and week: cards shown, accepted and overridden (with reasons) in a period; text, HTML and PNG."
EXIT_CODES = {
    0: "report printed (and written with --html, drawn with --png)",
    1: "no store, an outdated schema, an unreachable database, or --png without matplotlib",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", required=True, type=_date, metavar="DATE", help="first day of the period, YYYY-MM-DD (UTC)"
    )
    parser.add_argument(
        "--until", type=_date, metavar="DATE", help="last day of the period, included (default: today, UTC)"
    )
    parser.add_argument(
        "--db", metavar="URL", help="database URL (default: the store `serve` uses: MSCC_STORE__URL or /run/secrets)"
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write the report as one self-contained HTML page: per rule and week, override rate and reasons",
    )
    parser.add_argument(
        "--png", type=Path, metavar="FILE", help="also draw the report as a PNG bar chart (needs the `report` extra)"
    )


def run(args: argparse.Namespace) -> int:
    since: date = args.since
    until: date = args.until or datetime.now(UTC).date()
    if until < since:
        print("mscc-cds report: --until is before --since", file=sys.stderr)
        return USAGE
    if args.png is not None and importlib.util.find_spec("matplotlib") is None:
        # Checked first: a committee member should not wait for the query to learn this.
        print(
            "mscc-cds report: --png needs matplotlib, which is not installed; "
            "install it with: pip install 'mscc-cds[report]'",
            file=sys.stderr,
        )
        return FAILURE
    from service.store.db import display_url, sqlite_file
    from service.store.report import format_report
    from service.store.schema import SchemaOutdated

    period = f"{since.isoformat()} to {until.isoformat()} (UTC)"
    url = store_url(args.db)
    database_file = sqlite_file(url)
    if database_file is not None and not database_file.is_file():
        # Opening it would create an empty database: a mistyped path must not pass silently.
        print(f"mscc-cds report: no store at {database_file}", file=sys.stderr)
        return FAILURE
    start = datetime.combine(since, time.min, tzinfo=UTC)
    # --until names the last day: the period ends at the following midnight.
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    import asyncio

    try:
        report = asyncio.run(_read(url, start, end))
    except SchemaOutdated as exc:
        print(f"mscc-cds report: {exc}", file=sys.stderr)
        return FAILURE
    except Exception as exc:  # unreachable database, bad credentials: say so plainly
        print(f"mscc-cds report: cannot read {display_url(url)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILURE
    # Which store was read: the default one is a file in the user's data folder.
    print(f"store: {display_url(url)}", file=sys.stderr)
    print(format_report(report, period=period), end="")
    if args.html is not None:
        from service.store.reporthtml import render_report_html

        args.html.write_text(render_report_html(report, period=period), encoding="utf-8")
        print(f"report written to {args.html}", file=sys.stderr)
    if args.png is not None:
        from service.store.chart import render_chart

        render_chart(report, args.png, period=period)
        print(f"chart written to {args.png}", file=sys.stderr)
    return OK


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


async def _read(url: str, since: datetime, until: datetime) -> Report:
    from service.store.db import create_engine
    from service.store.report import build_report
    from service.store.schema import require_head

    engine = create_engine(url)
    try:
        await require_head(engine)
        return await build_report(engine, since=since, until=until)
    finally:
        await engine.dispose()

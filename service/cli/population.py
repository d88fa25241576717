"""``mscc-cds population``: screen every patient of a Bulk FHIR export with the hook's screener.

With ``--at`` (default now) it writes the coordinator's worklist; with ``--from``/``--to``
it replays the screener day by day (shadow mode) and writes the safety committee's report.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.cli.configuration import load_cli_settings
from service.cli.exitcodes import FAILURE, OK, USAGE
from service.cli.screen import parse_time

__all__ = ["EXIT_CODES", "HELP", "add_arguments", "parse_step", "run"]

HELP = "Screen every patient of a Bulk FHIR export (NDJSON) with the hook's rules: worklist, or shadow-mode report."
EXIT_CODES = {
    0: "the export was screened and the results written",
    1: "the export, the knowledge or Spark could not be used, or the results not written",
    2: "bad arguments or settings",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", type=Path, metavar="EXPORT_DIR", help="folder of the $export NDJSON files")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT_DIR", help="folder for the results")
    parser.add_argument("--at", metavar="ISO", help="screen as of this time (ISO 8601 with offset; default: now)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local", help="default: local")
    parser.add_argument(
        "--master", default="local[*]", metavar="URL", help="Spark master for --engine spark (default: local[*])"
    )
    shadow = parser.add_argument_group("shadow mode (replay the screener over a period; local engine)")
    shadow.add_argument("--from", dest="start", metavar="DATE", help="first day, YYYY-MM-DD or ISO time with offset")
    shadow.add_argument("--to", dest="end", metavar="DATE", help="last day, included (same forms)")
    shadow.add_argument("--step", default="1d", metavar="STEP", help="time between replays: Nd or Nh (default: 1d)")


def parse_step(text: str) -> timedelta:
    """``"1d"`` → one day, ``"12h"`` → twelve hours; ``ValueError`` otherwise."""
    units = {"d": "days", "h": "hours"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"not a step (Nd or Nh): {text!r}")
    return timedelta(**{units[unit]: int(number)})


def _moment(text: str) -> datetime:
    """A date (midnight UTC) or an aware ISO time."""
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return parse_time(text)


def run(args: argparse.Namespace) -> int:
    if not args.export_dir.is_dir():
        print(f"error: no export folder at {args.export_dir}", file=sys.stderr)
        return FAILURE
    try:
        at = parse_time(args.at) if args.at else datetime.now(UTC)
        shadow = args.start is not None or args.end is not None
        if shadow and (args.start is None or args.end is None):
            raise ValueError("shadow mode needs both --from and --to")
        start, end = (_moment(args.start), _moment(args.end)) if shadow else (at, at)
        step = parse_step(args.step)
        if end < start:
            raise ValueError("--to is before --from")
        if shadow and args.engine != "local":
            raise ValueError("shadow mode runs on the local engine only")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    # A configuration problem raises ConfigurationError: one line per problem, exit 2 (service.cli.main).
    settings = load_cli_settings()
    from service.clinical.valuesets import KnowledgeError
    from service.population.progress import open_progress

    progress = open_progress()
    try:
        if shadow:
            from service.population.shadow import run_shadow

            report = run_shadow(args.export_dir, args.out, start, end, step, settings, progress)
            print(report.render(), end="")
        else:
            from service.population.run import run_population

            population = run_population(
                args.export_dir, args.out, at, settings, progress, engine=args.engine, master=args.master
            )
            print(population.render(), end="")
    except KnowledgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith(("pyspark", "py4j")):
            raise
        print("error: --engine spark needs PySpark: pip install 'mscc-cds[spark]' (and Java 17+)", file=sys.stderr)
        return FAILURE
    except RuntimeError as exc:
        # Spark's own failures (no Java, a master that cannot be reached) are a message, not a traceback.
        if not type(exc).__module__.startswith("pyspark"):
            raise
        print(f"error: Spark failed: {exc}", file=sys.stderr)
        return FAILURE
    except OSError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILURE
    finally:
        progress.close()
    return OK

"""``mscc-cds population``: screen every patient of a Bulk FHIR export with the hook's screener.

With ``--at`` (default now) it writes the coordinator's worklist; with ``--from``/``--to``
it replays the screener day by day (shadow mode) and writes the safety committee's report.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from service.cli.exitcodes import FAILURE, OK, USAGE
from service.cli.screen import parse_time
from service.clinical.valuesets import KnowledgeError
from service.settings import load_settings

__all__ = ["HELP", "add_arguments", "parse_step", "run"]

HELP = "Screen every patient of a Bulk FHIR export (NDJSON) with the hook's rules: worklist, or shadow-mode report."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", type=Path, metavar="EXPORT_DIR", help="folder of the $export NDJSON files")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT_DIR", help="folder for the results")
    parser.add_argument("--at", metavar="ISO", help="screen as of this time (ISO 8601 with offset; default: now)")
    parser.add_argument("--engine", choices=("local",), default="local", help="default: local")


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
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"error: invalid settings: {exc.error_count()} problem(s)\n{exc}", file=sys.stderr)
        return FAILURE
    from service.population.progress import open_progress

    progress = open_progress()
    try:
        from service.population.run import run_population

        population = run_population(args.export_dir, args.out, at, settings, progress, engine=args.engine)
        print(population.render(), end="")
    except KnowledgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILURE
    except OSError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILURE
    finally:
        progress.close()
    return OK

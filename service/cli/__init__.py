"""``mscc-cds``: one console script, one module per subcommand.

Each subcommand module exposes ``HELP``, ``EXIT_CODES`` (``{code: meaning}``, shown in its
help), ``add_arguments(parser)`` and ``run(args) -> int``. Exit codes are shared by every
subcommand (see :mod:`service.cli.exitcodes`).

Building the parser imports every subcommand module, so those modules import only the
standard library at their top: the service, pydantic, httpx and uvicorn are imported by
``run``. ``mscc-cds --help`` then starts in a fraction of a second instead of seconds.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from service import __version__
from service.cli.configuration import ConfigurationError
from service.cli.exitcodes import USAGE, describe

__all__ = ["main"]

# Order is the order of `mscc-cds --help`.
_COMMANDS = ("serve", "migrate", "seed", "screen", "population", "call", "token", "report")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mscc-cds",
        description="MSCC screening CDS Hooks service and tools.",
        epilog=describe({0: "success"}) + "\n\n`mscc-cds COMMAND --help` lists each command's options and exit codes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        module = importlib.import_module(f"service.cli.{name}")
        subparser = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=describe(module.EXIT_CODES),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigurationError as exc:
        for problem in exc.problems:
            print(f"mscc-cds {args.command}: {problem}", file=sys.stderr)
        return USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

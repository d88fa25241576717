"""``mscc-cds``: one console script, one module per subcommand.

Each subcommand module exposes ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Exit codes are shared by every subcommand (see :mod:`service.cli.exitcodes`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Order is the order of `mscc-cds --help`.
_COMMANDS = ("serve", "migrate", "seed", "screen", "population", "call", "report")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mscc-cds", description="MSCC screening CDS Hooks service and tools.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        module_name = f"service.cli.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        subparser = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

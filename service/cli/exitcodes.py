"""Exit codes of ``mscc-cds``: stable, so scripts can rely on them; each command's help lists its own."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CARDS", "FAILURE", "NO_CARDS", "OK", "USAGE", "describe"]

OK = 0
#: screen/call: the service answered with no card
NO_CARDS = 0
#: screen/call: the service answered with at least one card
CARDS = 10
#: anything went wrong (server unreachable, bad answer, bad input, port in use)
FAILURE = 1
#: the command line or the MSCC_* settings are wrong (argparse uses 2 as well)
USAGE = 2


def describe(meanings: Mapping[int, str]) -> str:
    """The "exit codes" paragraph of a command's help, from ``{code: meaning}``."""
    rows = {**meanings, USAGE: "bad command line or MSCC_* settings (one line per problem on stderr)"}
    return "exit codes:\n" + "\n".join(f"  {code:<3} {meaning}" for code, meaning in sorted(rows.items()))

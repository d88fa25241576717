"""Exit codes of ``mscc-cds``: stable, so scripts can rely on them."""

from __future__ import annotations

__all__ = ["CARDS", "FAILURE", "NO_CARDS", "OK", "USAGE"]

OK = 0
#: screen/call: the service answered with no card
NO_CARDS = 0
#: screen/call: the service answered with at least one card
CARDS = 10
#: anything went wrong (server unreachable, bad answer, bad input)
FAILURE = 1
#: the command line itself is wrong (argparse uses 2 as well)
USAGE = 2

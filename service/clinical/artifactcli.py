"""The command line of the generated knowledge artifacts: check them, or regenerate them with ``--write``.

``python -m service.clinical.knowledge`` (the manifest) and ``python -m service.clinical.plandefinitions``
share it, so both read ``--profiles-dir`` the same way and both exit 1 when the committed files are stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from service.clinical.valuesets import DEFAULT_PROFILES_DIR

__all__ = ["CheckResult", "check_or_write"]

#: ``(up to date, message)``: the message goes to stdout when up to date, to stderr when stale.
CheckResult = tuple[bool, str]


def check_or_write(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    write_help: str,
    write: Callable[[Path], str],
    check: Callable[[Path], CheckResult],
) -> int:
    """``prog [--write] [--profiles-dir DIR]``: regenerate with ``write`` (which returns what to print), else ``check``.

    Exit 0 when written or up to date, 1 when stale.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", action="store_true", help=write_help)
    parser.add_argument("--profiles-dir", type=Path, default=DEFAULT_PROFILES_DIR, help="the profiles folder")
    args = parser.parse_args(argv)
    if args.write:
        sys.stdout.write(f"{write(args.profiles_dir)}\n")
        return 0
    up_to_date, message = check(args.profiles_dir)
    (sys.stdout if up_to_date else sys.stderr).write(f"{message}\n")
    return 0 if up_to_date else 1

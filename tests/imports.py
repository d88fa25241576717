"""Which modules a piece of Python loads, run in a fresh interpreter so that nothing else imported hides it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

__all__ = ["loaded_by"]

_PROBE = """
import sys
{code}
loaded = sorted(name for name in {watched!r} if name in sys.modules)
print("LOADED:", ",".join(loaded))
"""


def loaded_by(code: str, watched: Sequence[str], *argv: str) -> list[str]:
    """Of ``watched``, the modules loaded once ``code`` ran (``argv``: its ``sys.argv[1:]``)."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(code=code, watched=tuple(watched)), *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("LOADED:"), result.stdout
    return [name for name in line.removeprefix("LOADED:").strip().split(",") if name]

"""Virtualenvs of the tools the tests run (SEKMET, checkov), built on first use at the repository root.

Each holds a tool whose pins clash with the dev environment's, so it gets its own ``.venv-*``
(git-ignored). They are built with uv, which the dev extra installs next to pytest: pip took
over a minute of CPU for checkov's ~80 packages, uv a few seconds. A lock file beside the
folder makes a second pytest-xdist worker wait for the first instead of building into the
same folder.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["build_tool_venv", "exclusively"]


@contextmanager
def exclusively(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` (beside it, git-ignored like it) while inside.

    The lock is released when the file is closed, also when the holder dies.
    """
    lock = target.with_name(f"{target.name}.lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def build_tool_venv(venv: Path, requirement: str, *, with_pip: bool = False) -> subprocess.CompletedProcess[str]:
    """A fresh ``venv`` holding ``requirement``; ``with_pip`` seeds pip too (for commands that call it).

    Without uv next to the interpreter (a dev environment without the dev extra), pip does it.
    The caller holds :func:`exclusively` on ``venv``.
    """
    shutil.rmtree(venv, ignore_errors=True)
    uv = Path(sys.executable).parent / "uv"
    if uv.is_file():
        seed = ["--seed"] if with_pip else []
        subprocess.run([str(uv), "venv", "-q", *seed, "--python", sys.executable, str(venv)], check=True, timeout=300)
        install = [str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), requirement]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", requirement]
    return subprocess.run(install, capture_output=True, text=True, timeout=1800, check=False)

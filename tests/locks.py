"""One test process at a time builds a shared tool virtualenv (pytest-xdist runs two or more)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exclusively"]


@contextmanager
def exclusively(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` (beside it, git-ignored like it) while inside.

    The virtualenvs at the repository root are created on first use; two xdist workers must not
    both find one missing and build it into the same folder. The lock is released when the file
    is closed, also when the holder dies.
    """
    lock = target.with_name(f"{target.name}.lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield

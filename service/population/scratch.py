"""A scratch SQLite file: rebuilt on every run, so durability buys nothing and is switched off."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["ScratchFile"]


class ScratchFile:
    """A SQLite connection to ``path`` with ``schema`` created; closed by ``with``."""

    def __init__(self, path: Path, schema: str) -> None:
        self._connection = sqlite3.connect(path)
        self._connection.executescript(f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; {schema}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._connection.close()

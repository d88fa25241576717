"""Progress of a long population run: a bar on a terminal (rich), plain lines otherwise.

A log file or CI output gains nothing from a redrawn bar: there, one line per tenth of a
phase says how far it got.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

__all__ = ["PlainProgress", "Progress", "open_progress"]


class Progress(Protocol):
    def phase(self, name: str, total: int | None, unit: str) -> None:
        """Start a phase (ending the previous one); ``total`` may be unknown."""
        ...

    def advance(self, amount: int = 1) -> None: ...

    def close(self) -> None: ...


class PlainProgress:
    """One line per tenth of a phase (and at its end) on ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._name = ""
        self._unit = ""
        self._total: int | None = None
        self._done = 0
        self._next_tenth = 1
        self._started = time.monotonic()

    def phase(self, name: str, total: int | None, unit: str) -> None:
        self._end_phase()
        self._name, self._total, self._unit, self._done, self._next_tenth = name, total, unit, 0, 1
        self._started = time.monotonic()
        shown = f"{total:,} {unit}" if total is not None else unit
        print(f"{name}: {shown} ...", file=self._stream, flush=True)

    def advance(self, amount: int = 1) -> None:
        self._done += amount
        if self._total and self._done * 10 >= self._next_tenth * self._total and self._next_tenth <= 10:
            self._next_tenth = self._done * 10 // self._total + 1
            percent = self._done * 100 // self._total
            print(f"{self._name}: {percent}% ({self._done:,} of {self._total:,} {self._unit})", file=self._stream)

    def _end_phase(self) -> None:
        if self._name:
            elapsed = time.monotonic() - self._started
            print(f"{self._name}: done, {self._done:,} {self._unit} in {elapsed:.1f} s", file=self._stream, flush=True)
            self._name = ""

    def close(self) -> None:
        self._end_phase()


class _RichProgress:
    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            console=Console(file=stream),
        )
        self._progress.start()
        self._task: object | None = None

    def phase(self, name: str, total: int | None, unit: str) -> None:
        if self._task is not None:
            self._progress.stop_task(self._task)  # type: ignore[arg-type]
        self._task = self._progress.add_task(name, total=total, unit=unit)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)  # type: ignore[arg-type]

    def close(self) -> None:
        self._progress.stop()


def open_progress(stream: TextIO | None = None) -> Progress:
    """A bar when ``stream`` (default: stderr) is a terminal, else plain lines."""
    stream = stream or sys.stderr
    return _RichProgress(stream) if stream.isatty() else PlainProgress(stream)

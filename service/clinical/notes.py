"""Data-quality notes collected while reading a record: safe to log, no values, no ids."""

from __future__ import annotations

__all__ = ["Notes"]


class Notes:
    """Distinct messages in first-seen order, each with how often it occurred."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, message: str) -> None:
        self._counts[message] = self._counts.get(message, 0) + 1

    def render(self) -> tuple[str, ...]:
        return tuple(message if count == 1 else f"{message} (×{count})" for message, count in self._counts.items())

"""The FHIR time budget of one hook call, shared by its parallel queries.

The gatherer opens the budget before it starts the queries; each query (and each page
and retry inside it) reads the same deadline through a context variable, which asyncio
copies into every task created inside the ``with`` block. A searcher called outside any
budget gets one of its own per query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_deadline", "fetch_budget", "remaining_s"]

_deadline: ContextVar[float | None] = ContextVar("mscc_fhir_deadline", default=None)


def _now() -> float:
    # the event loop's clock: the one asyncio.timeout_at() and asyncio.wait() measure with
    return asyncio.get_running_loop().time()


@contextmanager
def fetch_budget(seconds: float) -> Iterator[float]:
    """Run the block under a deadline ``seconds`` from now (or an earlier one already open)."""
    deadline = _now() + seconds
    outer = _deadline.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def current_deadline() -> float | None:
    """The loop time at which the open budget ends, if one is open."""
    return _deadline.get()


def remaining_s(deadline: float) -> float:
    return max(0.0, deadline - _now())

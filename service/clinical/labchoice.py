"""Which calcium and albumin results CA_CORR reads (docs/clinical/decision-table.md#derived-facts).

The latest calcium within the result window, a laboratory's own corrected value first at
the same time; and the albumin nearest in time to it within the pairing window. Ties go
to the result first in record order. The rule (:mod:`service.clinical.rules.calcium_reading`)
and the snapshot's choice of what to validate (:mod:`service.clinical.decisive`) both
order results with :func:`calcium_rank` and :func:`albumin_distance`, so they cannot
disagree on which result wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from service.clinical.patientdata import Measurement
from service.clinical.timing import TimeSpan
from service.clinical.units import albumin_g_per_l

__all__ = [
    "CALCIUM_CORRECTED",
    "CALCIUM_GROUPS",
    "albumin_distance",
    "calcium_rank",
    "latest_calcium",
    "nearest_albumin",
]

CALCIUM_CORRECTED = "calcium-corrected"
#: Total (mass or substance concentration) and corrected calcium.
CALCIUM_GROUPS = frozenset({"calcium-total-mass", "calcium-total-molar", CALCIUM_CORRECTED})


class Timed(Protocol):
    """A result, read or still raw: when it was taken and its value sets."""

    @property
    def when(self) -> TimeSpan: ...

    @property
    def groups(self) -> frozenset[str]: ...


def calcium_rank(item: Timed) -> tuple[datetime, bool]:
    """Later first; at the same time, a laboratory's own corrected value wins over ours."""
    return item.when.start, CALCIUM_CORRECTED in item.groups


def albumin_distance(item: Timed, calcium: Timed) -> timedelta:
    return abs(item.when.start - calcium.when.start)


def latest_calcium(items: Iterable[Measurement], at: datetime, window: timedelta) -> Measurement | None:
    """The latest calcium result (of ``items``, in record order) that may lie within ``window`` before ``at``."""
    recent = [item for item in items if item.when.may_be_within(at, window) and item.unit is not None]
    # max() keeps the first of equal ranks: the first in record order.
    return max(recent, key=calcium_rank) if recent else None


def nearest_albumin(
    items: Iterable[Measurement], calcium: Measurement, pairing: timedelta
) -> tuple[Measurement, Decimal] | None:
    """The albumin (of ``items``, in record order) nearest to ``calcium`` within ``pairing``, in g/L."""
    best: tuple[timedelta, Measurement, Decimal] | None = None
    for item in items:
        distance = albumin_distance(item, calcium)
        grams = albumin_g_per_l(item.value, item.unit or "")
        if distance <= pairing and grams is not None and (best is None or distance < best[0]):
            best = (distance, item, grams)
    return (best[1], best[2]) if best else None

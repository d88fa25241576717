"""Which body weights the NG12 weight-loss fact reads (docs/clinical/decision-table.md#derived-facts, ``NG12_SX``).

Weight loss counts as an NG12 symptom when it is coded, or when the latest body weight
within the symptom window is at least ``weight_loss_percent`` below the heaviest weight
recorded in that window before it (team policy: NG12 names the symptom, not a measure).
Of weights taken at the same time, or as heavy, the first in record order counts. The
fact (:mod:`service.clinical.rules.facts`) and the snapshot's choice of what to validate
(:mod:`service.clinical.decisive`) both choose by these orders, so they cannot disagree
on which weights count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from service.clinical.patientdata import Measurement
from service.clinical.units import body_weight_kg

__all__ = ["WEIGHT_GROUP", "WeightFall", "heaviest_before", "latest_weight", "weight_fall"]

WEIGHT_GROUP = "body-weight"


@dataclass(frozen=True, slots=True)
class WeightFall:
    """The heaviest weight in the window, the latest one, and the fall between them in per cent."""

    heaviest: Measurement
    latest: Measurement
    percent: Decimal


def _kg(item: Measurement) -> Decimal | None:
    return body_weight_kg(item.value, item.unit) if item.unit else None


def latest_weight(items: Iterable[Measurement], at: datetime, window: timedelta) -> Measurement | None:
    """The latest body weight (of ``items``, in record order) that may lie within ``window`` before ``at``."""
    recent = [item for item in items if item.when.may_be_within(at, window) and _kg(item) is not None]
    # max() keeps the first of equal times: the first in record order.
    return max(recent, key=lambda item: item.when.start) if recent else None


def heaviest_before(
    items: Iterable[Measurement], latest: Measurement, at: datetime, window: timedelta
) -> tuple[Measurement, Decimal] | None:
    """The heaviest weight (in kg) taken before ``latest`` within ``window`` before ``at``."""
    best: tuple[Measurement, Decimal] | None = None
    for item in items:
        kg = _kg(item)
        if (
            kg is not None
            and item.when.start < latest.when.start
            and item.when.may_be_within(at, window)
            and (best is None or kg > best[1])
        ):
            best = (item, kg)
    return best


def weight_fall(items: Iterable[Measurement], at: datetime, window: timedelta, percent: float) -> WeightFall | None:
    """The fall from the heaviest to the latest weight when it is at least ``percent``, else ``None``."""
    weights = list(items)
    latest = latest_weight(weights, at, window)
    heaviest = heaviest_before(weights, latest, at, window) if latest is not None else None
    if latest is None or heaviest is None:
        return None
    latest_kg = _kg(latest)
    item, heaviest_kg = heaviest
    if latest_kg is None or heaviest_kg <= 0:
        return None
    fall = (heaviest_kg - latest_kg) / heaviest_kg * 100
    # The threshold as written in the settings: 5 is 5, not 5.0000000000000001.
    return WeightFall(item, latest, fall) if fall >= Decimal(str(percent)) else None

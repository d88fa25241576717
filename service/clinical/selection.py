"""Which result a measured fact reads, declared as data, and the one function that chooses it.

A measured fact reads one result of its value sets (docs/clinical/decision-table.md#derived-facts):
PAIN_FEATURE the latest pain score at or above the severe threshold, CA_CORR the latest
calcium and the albumin nearest in time to it, NG12_SX's weight loss the latest body
weight and the heaviest before it. Each fact declares that once, as a :class:`Selection`
next to the fact (:mod:`service.clinical.rules.facts`,
:mod:`service.clinical.rules.calcium_reading`). Both sides run that declaration:

* the snapshot reader keeps only the results the selections choose, and validates no
  more of them than it must (:mod:`service.clinical.deferred`);
* the facts choose again, with the same :func:`choose_all`, from what the snapshot holds.

So the snapshot is the same however many results were validated, and a threshold or
window is changed in one place. Ties go to the result first in record order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from service.clinical.patientdata import Measurement
from service.clinical.timing import TimeSpan
from service.clinical.units import Measure
from service.fastinit import fast_init

__all__ = ["Choice", "Selection", "choose", "choose_all", "reach"]

#: latest: the latest in time; nearest: the nearest in time to the anchor's result;
#: largest: the largest value (in the selection's :class:`Measure`)
Choice = Literal["latest", "nearest", "largest"]


@fast_init
@dataclass(frozen=True, slots=True)
class Selection:
    """One measured fact's result: of which value sets, over which window, which one counts.

    ``anchor`` names a selection declared (and chosen) before this one: ``nearest`` is
    the result nearest in time to the anchor's, within ``near``; ``latest`` and ``largest``
    count only results taken before the anchor's. Without the anchor's result (or when it
    is in one of ``unless_anchor_in``) nothing is chosen.
    """

    name: str
    groups: frozenset[str]
    choice: Choice
    #: only results that may lie within this long before the hook time
    within: timedelta | None = None
    #: the quantity the value is compared in; a result whose unit is not of it never counts
    measure: Measure | None = None
    #: only results whose value is at least this
    at_least: float | None = None
    #: at the same time, a result in one of these groups wins (``latest``)
    preferred: frozenset[str] = frozenset()
    anchor: str | None = None
    near: timedelta | None = None
    unless_anchor_in: frozenset[str] = frozenset()

    @property
    def compares_values(self) -> bool:
        """Whether the value decides (a threshold, or the largest): else only the time and groups do."""
        return self.at_least is not None or self.choice == "largest"

    def value(self, number: Decimal, unit: str | None) -> Decimal | None:
        """``number`` in the compared unit; ``None`` when it cannot be compared."""
        if self.measure is None:
            return number
        return self.measure.convert(number, unit) if unit else None

    def anchored(self, anchor: Measurement | None) -> bool:
        """Whether this selection can choose anything, given its anchor's result."""
        if self.anchor is None:
            return True
        return anchor is not None and anchor.groups.isdisjoint(self.unless_anchor_in)

    def admits(self, when: TimeSpan, value: Decimal | None, at: datetime, anchor: Measurement | None) -> bool:
        """Whether a result taken at ``when`` with ``value`` (compared unit) may be chosen."""
        if self.within is not None and not when.may_be_within(at, self.within):
            return False
        if self.compares_values and value is None:
            return False
        if self.at_least is not None and value is not None and value < self.at_least:
            return False
        if anchor is None:
            return True
        if self.choice == "nearest":
            return self.near is not None and abs(when.start - anchor.when.start) <= self.near
        return when.start < anchor.when.start

    def rank(
        self, when: TimeSpan, groups: frozenset[str], value: Decimal | None, anchor: Measurement | None
    ) -> tuple[Any, ...]:
        """The higher, the better; for results :meth:`admits` accepts."""
        if self.choice == "latest":
            return when.start, not groups.isdisjoint(self.preferred)
        if self.choice == "nearest":
            distance = abs(when.start - anchor.when.start) if anchor is not None else timedelta.max
            return (-distance,)
        return (value,)


def choose(
    selection: Selection, items: Iterable[Measurement], at: datetime, anchor: Measurement | None = None
) -> Measurement | None:
    """The result ``selection`` chooses of ``items`` (in record order), given its anchor's result."""
    if not selection.anchored(anchor):
        return None
    best: Measurement | None = None
    best_rank: tuple[Any, ...] = ()
    for item in items:
        if item.groups.isdisjoint(selection.groups):
            continue
        value = selection.value(item.value, item.unit)
        if (selection.measure is not None and value is None) or not selection.admits(item.when, value, at, anchor):
            continue
        rank = selection.rank(item.when, item.groups, value, anchor)
        # Strictly better only: of equal ranks the first in record order stays.
        if best is None or rank > best_rank:
            best, best_rank = item, rank
    return best


def choose_all(
    selections: Sequence[Selection], items: Sequence[Measurement], at: datetime
) -> dict[str, Measurement | None]:
    """Each selection's result by name, anchors first (they are declared first)."""
    chosen: dict[str, Measurement | None] = {}
    for selection in selections:
        anchor = chosen[selection.anchor] if selection.anchor is not None else None
        chosen[selection.name] = choose(selection, items, at, anchor)
    return chosen


def reach(selections: Sequence[Selection]) -> timedelta:
    """How far before the hook time a result can still be chosen by one of ``selections``."""
    by_name: dict[str, timedelta] = {}
    for selection in selections:
        if selection.within is not None:
            by_name[selection.name] = selection.within
        else:
            # Only near its anchor's result, itself within the anchor's reach.
            anchor = by_name[selection.anchor] if selection.anchor is not None else timedelta(0)
            by_name[selection.name] = anchor + (selection.near or timedelta(0))
    return max(by_name.values(), default=timedelta(0))

"""Deferred validation: of the numeric results, only those a selection can choose are validated.

Validating an Observation with ``fhir.resources`` costs ~50 µs, more than everything else
a result costs, and a record holds many results of which the declared selections
(:mod:`service.clinical.selection`) choose a handful. Each result in a selection's value
sets is offered here with its raw JSON; for each such selection it is

* passed over when its raw value already rules it out (a plain JSON number below the
  selection's ``at_least``, read from its shortest repr as validation reads it), or its
  raw time lies outside the selection's window;
* held back when its raw time (and, when the selection compares values, its raw value
  in the compared unit) ranks it exactly as the validated result would be ranked;
* read at once otherwise: a time that is not in one strict FHIR form (:func:`raw_when`),
  a value that is not a plain number with a known unit.

:meth:`DeferredResults.results` then runs the selections in their declared order: each
validates its held-back results best first until one is read and admitted, and chooses
with :func:`~service.clinical.selection.choose` among every result read. A better one
was never skipped (it would have been validated first) and one that fails validation
is passed over as it would be anyway, so the choice is the one a validation of every
result would make (a property test compares the two: ``every`` validates every result).
A result never validated adds no note: a defect in a result that cannot be chosen is
not reported.

Nothing here knows a value set, a window or a threshold: those are the selections'.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from service.clinical.patientdata import Concept, Measurement
from service.clinical.selection import Selection, choose
from service.clinical.timing import TimeSpan, parse_time
from service.clinical.units import reported_unit
from service.fastinit import fast_init

__all__ = ["DeferredResults", "Read", "may_be_since", "raw_number", "raw_value", "raw_when"]

# ASCII digits only, as FHIR's own expressions: ``\d`` would also take other scripts' digits.
_STRICT_DATE = re.compile(r"[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?")  # a (partial) date
_STRICT_DATE_TIME = re.compile(  # seconds and an offset
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)

#: Reads (validates) one result; ``None`` when it is not usable, with a note.
Read = Callable[[dict[str, Any], frozenset[str], Concept], Measurement | None]


def _dating(resource: dict[str, Any]) -> tuple[tuple[object, ...], bool]:
    """The raw values that date a result, and whether the validated reading is exactly the one value.

    ``effective[x]`` when it is a dateTime or instant, else ``issued`` (exact); a Period's
    start and end bound it (not exact: the reading spans them, and a coarse start such as
    "2026" can end after the end); a Timing, or two types of ``effective[x]`` at once
    (validation refuses those), give nothing.
    """
    if "effectivePeriod" in resource:
        period = resource["effectivePeriod"]
        return (
            tuple(period[key] for key in ("start", "end") if key in period) if isinstance(period, dict) else ()
        ), False
    if "effectiveTiming" in resource:
        return (), False
    if "effectiveDateTime" in resource:
        if "effectiveInstant" in resource:
            return (), False
        return (resource["effectiveDateTime"],), True
    return (resource["effectiveInstant"] if "effectiveInstant" in resource else resource.get("issued"),), True


def raw_when(resource: dict[str, Any], zone: tzinfo) -> TimeSpan | None:
    """When a result was taken, from the raw JSON, as the reader would read it once validated.

    ``None`` when the time is missing, not a single value (:func:`_dating`), or not in a
    strict form (for which Python and ``fhir.resources`` read the same instants).
    """
    values, exact = _dating(resource)
    raw = values[0] if exact else None
    if not isinstance(raw, str) or (_STRICT_DATE if len(raw) <= 10 else _STRICT_DATE_TIME).fullmatch(raw) is None:
        return None
    return parse_time(raw, zone)


def may_be_since(resource: dict[str, Any], since: datetime, zone: tzinfo) -> bool:
    """Whether a result may have been taken at ``since`` or later, from the raw JSON, before validation.

    A pre-filter: a time that cannot be read here (none, a Timing, a malformed value) may
    be recent, and goes on to validation, which reads or reports it.
    """
    spans = [parse_time(raw, zone) if isinstance(raw, str) else None for raw in _dating(resource)[0]]
    return not spans or any(span is None or span.end >= since for span in spans)


def raw_number(resource: dict[str, Any]) -> Decimal | None:
    """The result's value from the raw JSON when it is a plain number (valueQuantity.value or valueInteger).

    A float is read from its shortest repr, as validation reads it.
    """
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        value = quantity.get("value") if isinstance(quantity, dict) else None
    else:
        value = resource.get("valueInteger")
    # bool is an int subclass, and strings are coerced by validation: neither is a plain number.
    if type(value) is int:
        return Decimal(value)
    return Decimal(repr(value)) if type(value) is float else None


def raw_value(resource: dict[str, Any], selection: Selection) -> Decimal | None:
    """The result's value in ``selection``'s compared unit from the raw JSON, as the reader reads it; else ``None``."""
    number = raw_number(resource)
    if number is None or selection.measure is None:
        return number
    quantity = resource.get("valueQuantity")
    if not isinstance(quantity, dict):
        return None
    return selection.value(number, reported_unit(quantity.get("code"), quantity.get("unit"), quantity.get("system")))


@fast_init
@dataclass(frozen=True, slots=True)
class _Pending:
    """A result not yet validated, with its raw time and (when compared) its raw value."""

    position: int
    resource: dict[str, Any]
    groups: frozenset[str]
    concept: Concept
    when: TimeSpan
    value: Decimal | None


class DeferredResults:
    """One hook call's numeric results, validated only when a selection can choose them."""

    def __init__(self, selections: Sequence[Selection], at: datetime, read: Read, *, every: bool = False) -> None:
        self._selections = tuple(selections)
        #: validate every result offered: the same choice, more cost, every defect in the notes
        self._every = every
        self._at = at
        self._read = read
        self._groups = frozenset().union(*(selection.groups for selection in self._selections))
        #: the selections reading a result, by its value sets (few distinct sets recur)
        self._of_groups: dict[frozenset[str], tuple[Selection, ...]] = {}
        self._pending: dict[str, list[_Pending]] = {selection.name: [] for selection in self._selections}
        #: every result validated, by position in the record: the measurement, or None if unreadable
        self._validated: dict[int, Measurement | None] = {}

    @property
    def groups(self) -> frozenset[str]:
        """Every value set a selection reads."""
        return self._groups

    def offer(
        self, position: int, resource: dict[str, Any], groups: frozenset[str], concept: Concept, when: TimeSpan | None
    ) -> None:
        """A counted result at ``position`` in the record; ``when`` is its raw time (:func:`raw_when`)."""
        if self._every:
            self._validate(position, resource, groups, concept)
            return
        held: list[tuple[Selection, _Pending]] = []
        for selection in self._selections_of(groups):
            value = raw_value(resource, selection) if selection.compares_values else None
            if selection.at_least is not None and value is not None and value < selection.at_least:
                continue  # surely below the threshold: this selection never chooses it
            if when is None or (selection.compares_values and value is None):
                self._validate(position, resource, groups, concept)  # nothing to rank it by: read it now
                return
            if selection.anchor is None and not selection.admits(when, value, self._at, None):
                continue
            held.append((selection, _Pending(position, resource, groups, concept, when, value)))
        for selection, pending in held:
            self._pending[selection.name].append(pending)

    def results(self) -> list[Measurement]:
        """The results the selections choose, in record order."""
        chosen: dict[str, Measurement | None] = {}
        for selection in self._selections:
            anchor = chosen[selection.anchor] if selection.anchor is not None else None
            if selection.anchored(anchor):
                self._first_admitted(selection, anchor)
            read = [item for _, item in sorted(self._validated.items()) if item is not None]
            chosen[selection.name] = choose(selection, read, self._at, anchor)
        kept = {id(item) for item in chosen.values() if item is not None}
        return [item for _, item in sorted(self._validated.items()) if item is not None and id(item) in kept]

    def _selections_of(self, groups: frozenset[str]) -> tuple[Selection, ...]:
        known = self._of_groups.get(groups)
        if known is None:
            # In declared order, each once: the order notes are added in does not depend on set order.
            known = tuple(selection for selection in self._selections if not selection.groups.isdisjoint(groups))
            self._of_groups[groups] = known
        return known

    def _first_admitted(self, selection: Selection, anchor: Measurement | None) -> None:
        at = self._at
        candidates = [
            item for item in self._pending[selection.name] if selection.admits(item.when, item.value, at, anchor)
        ]
        candidates.sort(
            key=lambda item: (selection.rank(item.when, item.groups, item.value, anchor), -item.position), reverse=True
        )
        for item in candidates:
            # A result can be a candidate of two selections (latest, then heaviest): it is validated once.
            if item.position in self._validated:
                measurement = self._validated[item.position]
            else:
                measurement = self._validate(item.position, item.resource, item.groups, item.concept)
            if measurement is not None and choose(selection, (measurement,), at, anchor) is measurement:
                return

    def _validate(
        self, position: int, resource: dict[str, Any], groups: frozenset[str], concept: Concept
    ) -> Measurement | None:
        measurement = self._read(resource, groups, concept)
        self._validated[position] = measurement
        return measurement

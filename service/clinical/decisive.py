"""Which numeric results can change an answer: only those are validated.

Validating an Observation with ``fhir.resources`` costs ~50 µs, more than everything
else a result costs, and a record holds many calcium, albumin and pain-score results of
which the rules use few (docs/clinical/decision-table.md#derived-facts):

* PAIN_FEATURE counts a pain score at or above ``severe_pain_score`` within
  ``spinal_pain_window_days``. A score whose raw value is a JSON number below it never
  counts, valid or not: it is not validated. (A decimal is read from the number's
  shortest repr, which lies on the same side of a float threshold as the number
  itself.) One severe score makes the fact true, so of those with a strict raw time only
  the latest in the window is validated, latest first until one is read; the card shows
  it as the evidence.
* CA_CORR reads the latest calcium within ``calcium_result_window_days``
  (:func:`~service.clinical.labchoice.latest_calcium`). Calcium results in the window
  are validated latest first, in :func:`~service.clinical.labchoice.calcium_rank` order
  and then record order, until one is read: an older one cannot be the latest, and a
  newer one that fails validation is skipped as before, so the next one is tried.
* It adjusts that calcium with the albumin nearest to it within
  ``albumin_pairing_hours``: albumins are validated nearest first, likewise, and only
  when the latest calcium is a total calcium.
* NG12 weight loss compares the latest body weight within ``ng12_symptom_window_days``
  with the heaviest before it in that window (:mod:`service.clinical.weightchoice`):
  weights are validated latest first until one is read, then those before the latest
  heaviest first (by the raw value in kg) until one is read. A weight whose raw value is
  not a plain number with a unit in kg, g or pounds is always read.

The order comes from the raw time, used only when it has one strict FHIR form
(:func:`raw_when`: a date, or a dateTime or instant with seconds and an offset) for
which Python and ``fhir.resources`` read the same instants. A result with any other time
(a Period, a Timing, no offset) is validated anyway, as is a code in two of the groups.
The rules then see the same latest calcium and nearest albumin, and a severe pain score
whenever there is one, as if every result had been read. A result never validated
adds no note: a defect in a result that cannot change an answer is not reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from service.clinical.labchoice import (
    CALCIUM_CORRECTED,
    CALCIUM_GROUPS,
    albumin_distance,
    calcium_rank,
    latest_calcium,
)
from service.clinical.patientdata import Concept, Measurement
from service.clinical.policy import ClinicalPolicy
from service.clinical.timing import TimeSpan, parse_time
from service.clinical.units import body_weight_kg, reported_unit
from service.clinical.weightchoice import WEIGHT_GROUP, latest_weight

__all__ = ["DecisiveResults", "raw_kg", "raw_number", "raw_when"]

_PAIN = "pain-severity"
_ALBUMIN = "albumin"
_STRICT_TIME = re.compile(
    r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$"  # a (partial) date
    r"|^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$"  # seconds and an offset
)

#: Reads (validates) one result; ``None`` when it is not usable, with a note.
Read = Callable[[dict[str, Any], frozenset[str], Concept], Measurement | None]


def raw_when(resource: dict[str, Any], zone: tzinfo) -> TimeSpan | None:
    """When a result was taken, from the raw JSON, as the reader would read it once validated.

    ``effective[x]`` when it is a dateTime or instant, else ``issued``; ``None`` when the
    time is missing, ambiguous or not in a strict form.
    """
    if "effectivePeriod" in resource or "effectiveTiming" in resource:
        return None
    if "effectiveDateTime" in resource:
        if "effectiveInstant" in resource:
            return None  # two types of effective[x]: validation will refuse it
        raw = resource["effectiveDateTime"]
    else:
        raw = resource["effectiveInstant"] if "effectiveInstant" in resource else resource.get("issued")
    if not isinstance(raw, str) or _STRICT_TIME.match(raw) is None:
        return None
    return parse_time(raw, zone)


def raw_number(resource: dict[str, Any]) -> int | float | None:
    """The result's value from the raw JSON when it is a plain number (valueQuantity.value or valueInteger)."""
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        value = quantity.get("value") if isinstance(quantity, dict) else None
    else:
        value = resource.get("valueInteger")
    # bool is an int subclass, and strings are coerced by validation: neither is a plain number.
    return value if type(value) in (int, float) else None


def raw_kg(resource: dict[str, Any]) -> Decimal | None:
    """A body weight in kg from the raw JSON, read as the reader reads it once validated; else ``None``."""
    quantity = resource.get("valueQuantity")
    value = raw_number(resource)
    if not isinstance(quantity, dict) or value is None:
        return None
    unit = reported_unit(quantity.get("code"), quantity.get("unit"), quantity.get("system"))
    # A float's shortest repr is the decimal validation reads from it.
    return body_weight_kg(Decimal(repr(value)), unit) if unit is not None else None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A result not yet validated, with its raw time (and, for a body weight, its raw kg)."""

    position: int
    resource: dict[str, Any]
    groups: frozenset[str]
    concept: Concept
    when: TimeSpan
    kg: Decimal = Decimal(0)


class DecisiveResults:
    """One hook call's numeric results, validated only when they can change an answer."""

    def __init__(self, policy: ClinicalPolicy, at: datetime, read: Read) -> None:
        self._at = at
        self._read = read
        self._severe = policy.severe_pain_score
        self._pain_window = timedelta(days=policy.spinal_pain_window_days)
        self._calcium_window = timedelta(days=policy.calcium_result_window_days)
        self._pairing = timedelta(hours=policy.albumin_pairing_hours)
        self._weight_window = timedelta(days=policy.ng12_symptom_window_days)
        self._pain: list[_Pending] = []
        self._calcium: list[_Pending] = []
        self._albumin: list[_Pending] = []
        self._weight: list[_Pending] = []
        self._kept: list[tuple[int, Measurement]] = []
        #: positions validated so far, and whether each was read
        self._tried: dict[int, bool] = {}

    def offer(
        self,
        position: int,
        resource: dict[str, Any],
        groups: frozenset[str],
        concept: Concept,
        when: TimeSpan | None,
    ) -> None:
        """A counted (final, amended, corrected) result at ``position`` in the record; ``when`` is its raw time."""
        pain, calcium, albumin = _PAIN in groups, not groups.isdisjoint(CALCIUM_GROUPS), _ALBUMIN in groups
        weight = WEIGHT_GROUP in groups
        if (pain, calcium, albumin, weight).count(True) != 1:
            self._keep(position, resource, groups, concept)  # read by two rules: always read
            return
        if weight:
            kg = raw_kg(resource)
            if when is None or kg is None:
                self._keep(position, resource, groups, concept)  # nothing to rank it by: always read
            else:
                self._weight.append(_Pending(position, resource, groups, concept, when, kg))
            return
        if pain:
            number = raw_number(resource)
            if number is not None and number < self._severe:
                return
        if when is None or (pain and number is None):
            self._keep(position, resource, groups, concept)  # no time to rank it by, or no plain value: always read
            return
        pending = _Pending(position, resource, groups, concept, when)
        (self._pain if pain else self._calcium if calcium else self._albumin).append(pending)

    def results(self) -> list[Measurement]:
        """The results read, in record order: every one the rules could use."""
        at, window = self._at, self._pain_window
        severe = [item for item in self._pain if item.when.may_be_within(at, window)]
        severe.sort(key=lambda item: (item.when.start, -item.position), reverse=True)
        self._first_read(severe)
        calcium = self._latest_calcium()
        if calcium is not None and CALCIUM_CORRECTED not in calcium.groups:
            candidates = [item for item in self._albumin if albumin_distance(item, calcium) <= self._pairing]
            candidates.sort(key=lambda item: (albumin_distance(item, calcium), item.position))
            self._first_read(candidates)
        self._weights()
        return [measurement for _, measurement in sorted(self._kept, key=lambda kept: kept[0])]

    def _weights(self) -> None:
        at, window = self._at, self._weight_window
        recent = [item for item in self._weight if item.when.may_be_within(at, window)]
        recent.sort(key=lambda item: (item.when.start, -item.position), reverse=True)
        self._first_read(recent)
        # The latest of those read: the first valid candidate, or a weight read at once.
        kept = sorted(self._kept, key=lambda kept: kept[0])
        latest = latest_weight((item for _, item in kept if WEIGHT_GROUP in item.groups), at, window)
        if latest is None:
            return
        earlier = [item for item in recent if item.when.start < latest.when.start]
        earlier.sort(key=lambda item: (-item.kg, item.position))
        self._first_read(earlier)

    def _latest_calcium(self) -> Measurement | None:
        at, window = self._at, self._calcium_window
        candidates = [item for item in self._calcium if item.when.may_be_within(at, window)]
        candidates.sort(key=lambda item: (*calcium_rank(item), -item.position), reverse=True)
        self._first_read(candidates)
        # The latest of those read: the first valid candidate, or a result read at once.
        kept = sorted(self._kept, key=lambda kept: kept[0])
        return latest_calcium((item for _, item in kept if not item.groups.isdisjoint(CALCIUM_GROUPS)), at, window)

    def _first_read(self, candidates: list[_Pending]) -> None:
        for item in candidates:
            # A weight can be a candidate twice (latest, then heaviest): it is validated once.
            read = self._tried.get(item.position)
            if read is None:
                read = self._keep(item.position, item.resource, item.groups, item.concept) is not None
            if read:
                return

    def _keep(
        self, position: int, resource: dict[str, Any], groups: frozenset[str], concept: Concept
    ) -> Measurement | None:
        measurement = self._read(resource, groups, concept)
        self._tried[position] = measurement is not None
        if measurement is not None:
            self._kept.append((position, measurement))
        return measurement

"""FHIR dates and times as spans of possible instants, and the windows rules test them against.

A FHIR ``date``/``dateTime`` may be partial ("2026", "2026-05", "2026-05-20") or carry a
time with a UTC offset. Each value becomes a :class:`TimeSpan`: the earliest and latest
instant it can denote. Rules then ask one of two questions:

* ``may_be_within``: could the event fall inside the window? Used for facts that make a
  card fire: a screening tool should not miss a red flag because its date was coarse.
* ``surely_within``: does every possible instant fall inside the window? Used for facts
  that suppress or downgrade a card (R9): a card is only withheld on certain evidence.

Dates without a time are read in the hook's time zone: a clinician's "20 May" is local.

Every FHIR-valid value is read, the sentinels included: ``9999-12-31`` (an open end) ends
at the last instant Python can hold, and ``0001-01-01T00:00:00+14:00`` (before the first
UTC instant Python can hold) is kept as written; shown on a card it keeps its own offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

from service.fastinit import fast_init

__all__ = [
    "AgeRange",
    "Precision",
    "TimeSpan",
    "age_range",
    "fix_missing_offsets",
    "parse_time",
]

Precision = Literal["year", "month", "day", "instant"]

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
# A FHIR dateTime with a time but no offset: FHIR requires the offset (and the seconds) when
# a time is present, yet EHR exports often drop them. It is read as UTC (and reported in the
# notes); missing seconds are read as ":00".
_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(?:\.\d{1,9})?)?$")


@fast_init
@dataclass(frozen=True, slots=True)
class TimeSpan:
    """The instants a FHIR time value can denote, both ends inclusive and time-zone aware."""

    start: datetime
    end: datetime
    precision: Precision

    @classmethod
    def instant(cls, moment: datetime) -> TimeSpan:
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return cls(aware, aware, "instant")

    def may_be_within(self, at: datetime, window: timedelta) -> bool:
        """Some possible instant lies in ``[at - window, at]``."""
        return self.end >= at - window and self.start <= at

    def surely_within(self, at: datetime, window: timedelta) -> bool:
        """The earliest possible instant lies in ``[at - window, at]`` (so the event is that recent)."""
        return at - window <= self.start <= at

    def surely_after(self, other: TimeSpan) -> bool:
        return self.start >= other.end

    def display(self, zone: tzinfo) -> str:
        """The value at its own precision; instants in ``zone`` (the hook's time zone)."""
        if self.precision == "instant":
            local = _local(self.start, zone)
            return f"{_ymd(local)} {local.hour:02d}:{local.minute:02d} {_offset(local)}"
        moment = self.start
        if self.precision == "year":
            return f"{moment:%Y}" if moment.year < 1000 else str(moment.year)
        if self.precision == "month":
            return f"{moment:%Y-%m}" if moment.year < 1000 else f"{moment.year}-{moment.month:02d}"
        return _ymd(moment)

    def short(self, zone: tzinfo) -> str:
        """Compact form for a card summary: "01 Jun 09:30" (hook time zone) or "01 Jun 2026"."""
        if self.precision == "instant":
            return f"{_local(self.start, zone):%d %b %H:%M}"
        return self.display(zone)


def _local(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in ``zone``; as written when that would leave the years Python holds (year 1 or 9999)."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        return moment


# Dates on cards are formatted by hand: strftime is slow, and the first call of a hook
# call costs ~50 µs more. strftime keeps years before 1000, which it pads by platform.
def _ymd(moment: datetime) -> str:
    """``%Y-%m-%d``."""
    if moment.year < 1000:
        return f"{moment:%Y-%m-%d}"
    return f"{moment.year}-{moment.month:02d}-{moment.day:02d}"


def _offset(local: datetime) -> str:
    """The UTC offset as ``+01:00`` (``"UTC"`` when zero)."""
    offset = local.utcoffset()
    if not offset:
        return "UTC"
    if offset.seconds % 60 or offset.microseconds:
        return local.isoformat()[-6:]
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _span_of_date(year: int, month: int | None, day: int | None, zone: tzinfo) -> TimeSpan:
    if month is None:
        first, last = date(year, 1, 1), date(year, 12, 31)
        precision: Precision = "year"
    elif day is None:
        first = date(year, month, 1)
        last = date(year, 12, 31) if month == 12 else date(year, month + 1, 1) - timedelta(days=1)
        precision = "month"
    else:
        first = last = date(year, month, day)
        precision = "day"
    # The last instant of the last day, written out: "the next day minus a tick" cannot
    # be computed for 9999-12-31, a common open end.
    return TimeSpan(datetime.combine(first, time(), zone), datetime.combine(last, time.max, zone), precision)


def parse_time(value: object, zone: tzinfo) -> TimeSpan | None:
    """A span for a FHIR time value: ``datetime``, ``date`` or (partial) string; else ``None``.

    ``zone`` places date-only values (the hook's time zone). A ``datetime`` without
    tzinfo is read as UTC; callers report that case before it reaches here.
    """
    if isinstance(value, datetime):
        return TimeSpan.instant(value)
    if isinstance(value, date):
        return _span_of_date(value.year, value.month, value.day, zone)
    if not isinstance(value, str):
        return None
    # "YYYY-MM-DD" is the longest partial date: a longer value can only be a dateTime.
    match = _PARTIAL.match(value) if len(value) <= 10 else None
    try:
        if match:
            year, month, day = match.groups()
            return _span_of_date(int(year), int(month) if month else None, int(day) if day else None, zone)
        return TimeSpan.instant(datetime.fromisoformat(value))
    except ValueError:
        return None


def fix_missing_offsets(value: object) -> tuple[object, bool]:
    """A copy of a JSON value with offset-less dateTimes read as UTC (``Z``); and whether any was."""
    if isinstance(value, str):
        match = _NO_OFFSET.match(value)
        if match is None:
            return value, False
        return (value if match.group(1) else value + ":00") + "Z", True
    if isinstance(value, dict):
        changed = False
        fixed: dict[str, object] = {}
        for key, item in value.items():
            fixed[key], item_changed = fix_missing_offsets(item)
            changed = changed or item_changed
        return fixed, changed
    if isinstance(value, list):
        results = [fix_missing_offsets(item) for item in value]
        return [item for item, _ in results], any(changed for _, changed in results)
    return value, False


@fast_init
@dataclass(frozen=True, slots=True)
class AgeRange:
    """Completed years at the hook time; a partial birth date gives a range."""

    low: int
    high: int

    def at_least(self, years: int) -> bool | None:
        """True/False when certain; ``None`` when the range straddles ``years``."""
        if self.low >= years:
            return True
        if self.high < years:
            return False
        return None

    def display(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"


def _completed_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_range(birth: TimeSpan, at: datetime) -> AgeRange:
    """Age in completed years at ``at`` (its local date) for every possible birth date."""
    today = at.date()
    oldest = _completed_years(birth.start.date(), today)
    youngest = _completed_years(birth.end.date(), today)
    return AgeRange(low=max(youngest, 0), high=max(oldest, 0))

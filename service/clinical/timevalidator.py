"""R4B ``date``, ``dateTime`` and ``instant`` validation, with a short path for the forms most values take.

``fhir.resources`` validates a time in Python: the type's regular expression, a second
expression for partial dates, a third for leap seconds, then pydantic's parser. That
cost about 6 µs a value, a twelfth of screening a 100-resource record (bench/run.py).
Almost every value in a record is a whole date (``2018-02-12``) or a date-time with
seconds and an offset: for those, :class:`TimeValidator` checks the form with one
expression that admits nothing the R4B type refuses (years 0001-9999, months 01-12,
offsets within ±14:00, at most six decimals) and lets Python's ``fromisoformat`` check
the calendar (the 30th of February, hour 24, second 60 are refused there). Anything
else, and everything ``fromisoformat`` refuses, goes to the R4B validator, which
accepts or refuses it and words the error. A property test compares the two over the
types' grammar.

A date-time read here carries a ``datetime.timezone``, the R4B validator's a pydantic
``TzInfo`` with the same offset: the instant and the offset are the same.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal, Protocol

__all__ = ["TimeKind", "TimeValidator"]

TimeKind = Literal["date", "dateTime", "instant"]

# ASCII digits, as FHIR's own expressions (``\d`` would take other scripts' digits too).
_WHOLE_DATE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)


class _Validator(Protocol):
    def validate_python(self, input: Any, /) -> Any: ...


class TimeValidator:
    """Validates like ``fallback`` (the R4B type's validator), reading the common forms itself."""

    __slots__ = ("_dates", "_fallback", "_times")

    def __init__(self, kind: TimeKind, fallback: _Validator) -> None:
        self._fallback = fallback
        #: a dateTime may be a whole date (read as a date); a date may be nothing else; an instant never
        self._dates = kind in ("date", "dateTime")
        self._times = kind in ("dateTime", "instant")

    def validate_python(self, input: Any, /) -> Any:
        if type(input) is str:
            try:
                if len(input) == 10:
                    if self._dates and _WHOLE_DATE.fullmatch(input) and input[:4] != "0000":
                        return date.fromisoformat(input)
                elif self._times and _DATE_TIME.fullmatch(input) and input[:4] != "0000":
                    return datetime.fromisoformat(input)
            except ValueError:
                pass  # not a calendar date or time: the R4B validator refuses it, in its words
        return self._fallback.validate_python(input)

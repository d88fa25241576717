"""The short path for R4B times reads every value as the R4B validator does, or leaves it to it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.fhirtypes import DateTimeType, DateType, InstantType
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from service.clinical.timevalidator import TimeKind, TimeValidator

_TYPES: dict[TimeKind, Any] = {"date": DateType, "dateTime": DateTimeType, "instant": InstantType}


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda number: f"{number:02d}")


# Near the types' grammar on purpose: each part ranges a little past what FHIR allows
# (month 13, day 32, hour 24, second 60, offset +15:00, seven decimals, year 0000).
_YEARS = st.one_of(st.integers(0, 9999).map(lambda year: f"{year:04d}"), st.sampled_from(["0000", "0001", "9999"]))
_OFFSETS = st.one_of(
    st.just("Z"),
    st.builds(lambda sign, hours, minutes: f"{sign}{hours}:{minutes}", st.sampled_from("+-"), _two(0, 15), _two(0, 60)),
    st.just(""),
)
_DIGITS = st.integers(1, 9).flatmap(lambda count: st.text("0123456789", min_size=count, max_size=count))
_FRACTIONS = st.one_of(st.just(""), _DIGITS.map(lambda digits: "." + digits))
_DATES = st.builds(lambda year, month, day: f"{year}-{month}-{day}", _YEARS, _two(0, 13), _two(0, 32))
_TIMES = st.builds(
    lambda day, hour, minute, second, fraction, offset: f"{day}T{hour}:{minute}:{second}{fraction}{offset}",
    _DATES,
    _two(0, 24),
    _two(0, 60),
    _two(0, 61),
    _FRACTIONS,
    _OFFSETS,
)
_VALUES = st.one_of(
    _DATES,
    _TIMES,
    _YEARS,
    st.builds(lambda year, month: f"{year}-{month}", _YEARS, _two(0, 13)),
    st.text(max_size=40),
    st.sampled_from(["2018-02-12 18:26:23Z", "20180212", "2018-W06", "2018-02-12T18:26Z", "2018-02-12T18:26:23+0100"]),
    # other scripts' digits (Arabic-Indic, fullwidth) in each place
    st.sampled_from(["\u0662\u0660\u0661\u0668-02-12", "2018-02-1\uff12", "2018-02-12T18:26:2\u0663Z"]),
)


def _outcome(validator: Any, value: object) -> tuple[str, object, object]:
    try:
        result = validator.validate_python(value)
    except ValidationError:
        return ("refused", None, None)
    offset = result.utcoffset() if isinstance(result, datetime) else None
    return (type(result).__name__, result, offset)


@pytest.mark.parametrize("kind", list(_TYPES))
@settings(max_examples=600, deadline=None)
@given(value=_VALUES)
def test_the_short_path_reads_as_the_r4b_type_does(kind: TimeKind, value: str) -> None:
    r4b = TypeAdapter(_TYPES[kind]).validator
    assert _outcome(TimeValidator(kind, r4b), value) == _outcome(r4b, value)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("dateTime", "2018-02-12T18:26:23.181694+00:00", datetime.fromisoformat("2018-02-12T18:26:23.181694+00:00")),
        ("dateTime", "2018-02-12", date(2018, 2, 12)),
        ("date", "9999-12-31", date(9999, 12, 31)),
        ("instant", "0001-01-01T00:00:00+14:00", datetime.fromisoformat("0001-01-01T00:00:00+14:00")),
    ],
)
def test_common_forms_are_read_without_the_r4b_validator(kind: TimeKind, value: str, expected: object) -> None:
    class Refuses:
        def validate_python(self, input: Any, /) -> Any:
            raise AssertionError(f"{input!r} reached the R4B validator")

    assert TimeValidator(kind, Refuses()).validate_python(value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("dateTime", "2018-02-30"),  # no such day
        ("dateTime", "2018-02-12T24:00:00Z"),
        ("dateTime", "2018-02-12T18:26:23+15:00"),  # beyond FHIR's ±14:00
        ("instant", "2018-02-12"),  # an instant has a time
        ("date", "2018-02-12T18:26:23Z"),  # a date has none
        ("dateTime", "0000-01-01"),
    ],
)
def test_what_r4b_refuses_is_refused(kind: TimeKind, value: str) -> None:
    with pytest.raises(ValidationError):
        TimeValidator(kind, TypeAdapter(_TYPES[kind]).validator).validate_python(value)

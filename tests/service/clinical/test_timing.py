"""FHIR times as spans: partial dates, offsets, windows that fire vs windows that suppress, age."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from service.clinical.timing import AgeRange, Precision, TimeSpan, age_range, fix_missing_offsets, parse_time

PLUS_ONE = timezone(timedelta(hours=1))
AT = datetime(2026, 6, 1, 10, 0, tzinfo=PLUS_ONE)


@pytest.mark.parametrize(
    ("value", "start", "end", "precision"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=PLUS_ONE), datetime(2026, 12, 31, 23, 59, 59, 999999, PLUS_ONE), "year"),
        (
            "2026-02",
            datetime(2026, 2, 1, tzinfo=PLUS_ONE),
            datetime(2026, 2, 28, 23, 59, 59, 999999, PLUS_ONE),
            "month",
        ),
        (
            "2025-12",
            datetime(2025, 12, 1, tzinfo=PLUS_ONE),
            datetime(2025, 12, 31, 23, 59, 59, 999999, PLUS_ONE),
            "month",
        ),
        (
            "2026-05-20",
            datetime(2026, 5, 20, tzinfo=PLUS_ONE),
            datetime(2026, 5, 20, 23, 59, 59, 999999, PLUS_ONE),
            "day",
        ),
    ],
)
def test_partial_dates_span_their_period_in_the_hook_zone(
    value: str, start: datetime, end: datetime, precision: Precision
) -> None:
    span = parse_time(value, PLUS_ONE)
    assert span == TimeSpan(start, end, precision)


def test_datetime_with_offset_is_one_instant() -> None:
    span = parse_time("2026-05-31T23:30:00-05:00", PLUS_ONE)
    assert span is not None
    assert span.start == span.end == datetime(2026, 6, 1, 4, 30, tzinfo=UTC)
    assert span.display(PLUS_ONE) == "2026-06-01 05:30 +01:00"


def test_validated_values_are_accepted_as_python_types() -> None:
    assert parse_time(date(2026, 5, 1), PLUS_ONE) == parse_time("2026-05-01", PLUS_ONE)
    naive = parse_time(datetime(2026, 5, 1, 8, 0), PLUS_ONE)
    assert naive is not None
    assert naive.start.tzinfo is UTC


@pytest.mark.parametrize("value", ["yesterday", "2026-13", "2026-02-30", "", 12, None])
def test_unreadable_values_give_no_span(value: object) -> None:
    assert parse_time(value, PLUS_ONE) is None


def test_may_be_within_fires_on_any_possible_instant() -> None:
    window = timedelta(days=14)
    exactly = TimeSpan.instant(AT - window)
    assert exactly.may_be_within(AT, window)
    assert not TimeSpan.instant(AT - window - timedelta(seconds=1)).may_be_within(AT, window)
    # the day 14 calendar days ago overlaps the window's first hours
    day = parse_time("2026-05-18", PLUS_ONE)
    assert day is not None and day.may_be_within(AT, window)
    earlier = parse_time("2026-05-17", PLUS_ONE)
    assert earlier is not None and not earlier.may_be_within(AT, window)
    future = TimeSpan.instant(AT + timedelta(minutes=1))
    assert not future.may_be_within(AT, window)


def test_surely_within_needs_the_earliest_instant_inside() -> None:
    window = timedelta(days=14)
    assert TimeSpan.instant(AT - window).surely_within(AT, window)
    month = parse_time("2026-05", PLUS_ONE)
    assert month is not None
    assert month.may_be_within(AT, window)
    assert not month.surely_within(AT, window)
    today = parse_time("2026-06-01", PLUS_ONE)
    assert today is not None and today.surely_within(AT, window)


def test_surely_after_compares_certain_order() -> None:
    onset = parse_time("2026-05-30", PLUS_ONE)
    assert onset is not None
    assert TimeSpan.instant(datetime(2026, 5, 31, 0, 0, tzinfo=PLUS_ONE)).surely_after(onset)
    assert not TimeSpan.instant(datetime(2026, 5, 30, 12, 0, tzinfo=PLUS_ONE)).surely_after(onset)


def test_fix_missing_offsets_copies_and_reads_as_utc() -> None:
    original = {"a": "2026-05-20T10:00:00", "b": ["2026-05-20T10:00:00.5", "2026-05-20"], "c": "2026-05-20T10:00:00Z"}
    fixed, changed = fix_missing_offsets(original)
    assert changed
    assert fixed == {
        "a": "2026-05-20T10:00:00Z",
        "b": ["2026-05-20T10:00:00.5Z", "2026-05-20"],
        "c": "2026-05-20T10:00:00Z",
    }
    assert original["a"] == "2026-05-20T10:00:00"
    assert fix_missing_offsets({"x": "2026-05-20", "y": 3}) == ({"x": "2026-05-20", "y": 3}, False)


def test_fix_missing_offsets_adds_missing_seconds() -> None:
    # "2026-05-20T10:00" lacks both seconds and offset (FHIR requires both once a time is given).
    assert fix_missing_offsets(["2026-05-20T10:00"]) == (["2026-05-20T10:00:00Z"], True)
    assert fix_missing_offsets("2026-05-20T10:00+01:00") == ("2026-05-20T10:00+01:00", False)


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("1986-06-01", AgeRange(40, 40)),  # birthday today
        ("1986-06-02", AgeRange(39, 39)),  # birthday tomorrow
        ("1986-06", AgeRange(39, 40)),  # month only: the range straddles 40
        ("1986", AgeRange(39, 40)),
        ("1985", AgeRange(40, 41)),
    ],
)
def test_age_in_completed_years_on_the_local_date(birth: str, expected: AgeRange) -> None:
    span = parse_time(birth, PLUS_ONE)
    assert span is not None
    assert age_range(span, AT) == expected


def test_age_at_least_is_three_valued() -> None:
    assert AgeRange(40, 40).at_least(40) is True
    assert AgeRange(39, 39).at_least(40) is False
    assert AgeRange(39, 40).at_least(40) is None
    assert AgeRange(39, 40).display() == "39–40"


def _strftime_display(span: TimeSpan, zone: timezone) -> str:
    """TimeSpan.display as strftime writes it (it formats by hand, for speed)."""
    formats = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
    if span.precision in formats:
        return span.start.strftime(formats[span.precision])
    local = span.start.astimezone(zone)
    offset = local.isoformat()[-6:] if local.utcoffset() else "UTC"
    return f"{local:%Y-%m-%d %H:%M} {offset}"


@pytest.mark.parametrize("year", [1, 999, 1000, 2026, 9999])
@pytest.mark.parametrize("precision", ["year", "month", "day", "instant"])
@pytest.mark.parametrize(
    "zone",
    [UTC, PLUS_ONE, timezone(timedelta(hours=-3, minutes=-30)), timezone(timedelta(hours=5, minutes=30, seconds=15))],
)
def test_display_writes_what_strftime_writes(year: int, precision: Precision, zone: timezone) -> None:
    moment = datetime(year, 7, 4, 9, 5, 59, tzinfo=PLUS_ONE if year > 1 else UTC)
    span = TimeSpan(moment, moment, precision)
    assert span.display(zone) == _strftime_display(span, zone)

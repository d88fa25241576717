"""Weeks as the reports count them: ISO weeks, each named by its Monday (UTC date of the moment given)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

__all__ = ["monday", "weeks_from_to"]


def monday(moment: datetime | date) -> date:
    """The Monday of the week ``moment`` falls in."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def weeks_from_to(first: datetime | date, last: datetime | date) -> list[date]:
    """Every week's Monday from the week of ``first`` to the week of ``last``, both included.

    Weeks without data are listed too: a gap in a plot must read as zero, not vanish.
    """
    start, end = monday(first), monday(last)
    return [start + timedelta(weeks=number) for number in range((end - start).days // 7 + 1)]

"""Retry policy: one retry for 429/503, only when the pause fits the remaining budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from service.fhir.retry import DEFAULT_PAUSE_S, parse_retry_after, retry_pause

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("0", 0.0), ("2", 2.0), (" 7 ", 7.0), (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0)],
)
def test_retry_after_forms(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == pytest.approx(seconds)


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "-1", "1.5e3"])
def test_unusable_retry_after(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retryable_statuses_get_one_retry_within_budget(status: int) -> None:
    assert retry_pause(status, "0", attempt=0, remaining_s=0.3) == 0.0
    assert retry_pause(status, None, attempt=0, remaining_s=0.3) == DEFAULT_PAUSE_S
    assert retry_pause(status, "0", attempt=1, remaining_s=0.3) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 502, 504])
def test_other_failures_are_not_retried(status: int) -> None:
    assert retry_pause(status, "0", attempt=0, remaining_s=10) is None


def test_retry_after_beyond_the_budget_gives_up() -> None:
    assert retry_pause(429, "1", attempt=0, remaining_s=0.3) is None
    assert retry_pause(503, None, attempt=0, remaining_s=DEFAULT_PAUSE_S) is None

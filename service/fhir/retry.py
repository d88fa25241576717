"""When a FHIR request that failed may be tried once more, and after how long.

The whole hook must answer in about half a second, so the policy is deliberately thin:
only 429 (rate limited) and 503 (unavailable) are worth a second attempt, because they
say "not now" rather than "not this"; at most one retry; and only when the server's
``Retry-After`` (or our short default pause) ends before the hook's FHIR time budget.
A server asking us to wait longer than we have is answered by giving up at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["DEFAULT_PAUSE_S", "MAX_RETRIES", "RETRYABLE_STATUSES", "parse_retry_after", "retry_pause"]

RETRYABLE_STATUSES = frozenset({429, 503})
MAX_RETRIES = 1
#: Pause before the retry when the server gives no Retry-After: long enough for a
#: momentary overload to pass, short enough to leave most of the budget.
DEFAULT_PAUSE_S = 0.05


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait per RFC 9110 §10.2.3 (delay-seconds or HTTP-date); ``None`` if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_pause(status: int, retry_after: str | None, attempt: int, remaining_s: float) -> float | None:
    """The pause before retrying, or ``None`` when this failure must not be retried.

    ``attempt`` counts the retries already made; ``remaining_s`` is what is left of the
    hook's FHIR budget. The pause must leave room for the retried request itself, which
    is why it has to end strictly before the budget does.
    """
    if status not in RETRYABLE_STATUSES or attempt >= MAX_RETRIES:
        return None
    pause = parse_retry_after(retry_after)
    if pause is None:
        pause = DEFAULT_PAUSE_S
    if pause >= remaining_s:
        return None
    return pause

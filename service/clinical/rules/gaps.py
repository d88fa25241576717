"""Why a fact could not be ruled out: an absent value set or an unreadable prefetch key."""

from __future__ import annotations

from collections.abc import Iterable

from service.clinical.snapshot import PatientSnapshot
from service.prefetch import FINDING_VALUESETS, LAB_VALUESETS

__all__ = ["IMAGING_KEYS", "KEY_LABELS", "excluded_lines", "gap_lines", "unknown_reasons"]

#: The prefetch keys recent imaging (R9) is read from.
IMAGING_KEYS = ("imagingOrders", "imagingStudies", "imagingReports", "imagingProcedures")
#: Prefetch keys as a clinician would name the data behind them.
KEY_LABELS = {
    "patient": "patient demographics",
    "conditions": "conditions",
    "labs": "laboratory results, pain scores and smoking status",
    "findings": "symptoms and signs recorded as observations",
    "imagingOrders": "imaging orders",
    "imagingStudies": "imaging studies",
    "imagingReports": "imaging reports",
    "imagingProcedures": "imaging procedures",
    "draftOrders": "draft orders",
}


def _keys_for(group: str) -> tuple[str, ...]:
    # Conditions carry every finding; the prefetch queries observations only for the
    # value sets listed in service.prefetch, so only those depend on those keys.
    if group in LAB_VALUESETS:
        return ("labs",)
    return ("conditions", "findings") if group in FINDING_VALUESETS else ("conditions",)


def unknown_reasons(snapshot: PatientSnapshot, groups: Iterable[str], topic: str) -> tuple[str, ...]:
    """Why ``topic`` could not be ruled out: all its value sets absent, or a source unreadable."""
    groups = tuple(groups)
    if snapshot.valuesets.isdisjoint(groups):
        return (f"{topic}: no code list available, not checked",)
    if not snapshot.gaps:
        return ()
    wanted = {key for group in groups for key in _keys_for(group)}
    lines = (
        f"{topic}: could not read {'all ' if gap.partial else ''}{KEY_LABELS.get(gap.key, gap.key)}"
        for gap in sorted(snapshot.gaps, key=lambda gap: gap.key)
        if gap.key in wanted
    )
    return tuple(dict.fromkeys(lines))


def gap_lines(snapshot: PatientSnapshot, keys: Iterable[str]) -> tuple[str, ...]:
    """ "Could not read: …" for each unreadable prefetch key among ``keys`` (reason included, no PHI).

    A key read only in part says so: the card was decided on what was read.
    """
    wanted = set(keys)
    return tuple(
        (
            f"Incomplete data, screened as far as read: {KEY_LABELS.get(gap.key, gap.key)} ({gap.reason})"
            if gap.partial
            else f"Could not read: {KEY_LABELS.get(gap.key, gap.key)} ({gap.reason})"
        )
        for gap in snapshot.gaps
        if gap.key in wanted
    )


def excluded_lines(snapshot: PatientSnapshot) -> tuple[str, ...]:
    """What was sent but not used because it is not this patient's: counts and reasons, no ids."""
    return tuple(
        f"Not used: {item.count} {'resource' if item.count == 1 else 'resources'} sent as "
        f"{KEY_LABELS.get(item.key, item.key)}, {item.reason.phrase}"
        for item in snapshot.excluded
    )

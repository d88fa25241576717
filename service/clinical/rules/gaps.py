"""Why a fact could not be ruled out: an absent value set or a part of the record that could not be read.

The rules name parts of the record (:class:`~service.clinical.recordparts.RecordPart`),
never where the service fetched them: the service maps its prefetch keys to parts.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.clinical.recordparts import DataGap, RecordPart, parts_holding
from service.clinical.snapshot import PatientSnapshot

__all__ = ["excluded_lines", "gap_lines", "unknown_reasons", "unread_parts"]

_PART_ORDER = {part: index for index, part in enumerate(RecordPart)}


def unread_parts(snapshot: PatientSnapshot) -> frozenset[RecordPart]:
    """The parts of the record that could not be read, wholly or in part."""
    return frozenset(gap.part for gap in snapshot.gaps if gap.part is not None)


def unknown_reasons(snapshot: PatientSnapshot, groups: Iterable[str], topic: str) -> tuple[str, ...]:
    """Why ``topic`` could not be ruled out: all its value sets absent, or a part holding them unread."""
    groups = tuple(groups)
    if snapshot.valuesets.isdisjoint(groups):
        return (f"{topic}: no code list available, not checked",)
    if not snapshot.gaps:
        return ()
    wanted = {part for group in groups for part in parts_holding(group)}
    lines = (
        f"{topic}: could not read {'all ' if gap.partial else ''}{gap.part.label}"
        for gap in sorted(snapshot.gaps, key=_in_part_order)
        if gap.part is not None and gap.part in wanted
    )
    return tuple(dict.fromkeys(lines))


def _in_part_order(gap: DataGap) -> int:
    # Conditions before observed findings before lab results, as a clinician would look.
    return _PART_ORDER[gap.part] if gap.part is not None else len(_PART_ORDER)


def gap_lines(snapshot: PatientSnapshot, parts: Iterable[RecordPart]) -> tuple[str, ...]:
    """ "Could not read: …" for each unread part among ``parts`` (reason included, no PHI).

    A part read only in part says so: the card was decided on what was read.
    """
    wanted = set(parts)
    return tuple(
        (
            f"Incomplete data, screened as far as read: {gap.part.label} ({gap.reason})"
            if gap.partial
            else f"Could not read: {gap.part.label} ({gap.reason})"
        )
        for gap in snapshot.gaps
        if gap.part is not None and gap.part in wanted
    )


def excluded_lines(snapshot: PatientSnapshot) -> tuple[str, ...]:
    """What was sent but not used because it is not this patient's: counts and reasons, no ids."""
    return tuple(
        f"Not used: {item.count} {'resource' if item.count == 1 else 'resources'} sent as "
        f"{item.part.label if item.part is not None else item.key}, {item.reason.phrase}"
        for item in snapshot.excluded
    )

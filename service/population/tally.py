"""What a population run counted: lines, problems, patients, cards; and its summary (JSON, text)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.population.export import LineProblem, PatientLine, SkippedLine
from service.population.patients import PatientResult

__all__ = ["LineKey", "Tally", "line_key"]

#: (problem, resource type or ""); the problem is None for a line kept for screening
LineKey = tuple[str | None, str]


def line_key(line: PatientLine | SkippedLine) -> LineKey:
    """What :class:`Tally` counts a line under: small, hashable, cheap to ship from an executor."""
    if isinstance(line, PatientLine):
        return None, line.resource_type
    return line.problem.value, line.resource_type or ""


@dataclass(slots=True)
class Tally:
    """Counts that add up across files, partitions and engines (:meth:`merge`)."""

    lines: int = 0
    #: lines kept for screening, by resource type
    kept: Counter[str] = field(default_factory=Counter)
    #: (problem, resource type or "") -> lines
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    patients: int = 0
    screened: int = 0
    #: screened patients who had died by the screening time (no card, as on the hook)
    deceased: int = 0
    with_cards: int = 0
    #: (rule, indicator) -> cards
    cards: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: the screener's data notes -> patients
    notes: Counter[str] = field(default_factory=Counter)

    def count_line(self, line: PatientLine | SkippedLine) -> None:
        self.count_line_keys({line_key(line): 1})

    def count_line_keys(self, counts: Mapping[LineKey, int]) -> None:
        """Add lines counted by :func:`line_key` elsewhere (a distributed engine's partitions)."""
        for (problem, kind), count in counts.items():
            self.lines += count
            if problem is None:
                self.kept[kind] += count
            else:
                self.skipped[(problem, kind)] += count

    def count_patient(self, result: PatientResult) -> None:
        self.patients += 1
        if not result.screened:
            return
        self.screened += 1
        self.deceased += result.deceased
        self.with_cards += bool(result.rows)
        self.cards.update((row.rule, row.indicator) for row in result.rows)
        self.notes.update(set(result.notes))

    def merge(self, other: Tally) -> None:
        self.lines += other.lines
        self.kept.update(other.kept)
        self.skipped.update(other.skipped)
        self.patients += other.patients
        self.screened += other.screened
        self.deceased += other.deceased
        self.with_cards += other.with_cards
        self.cards.update(other.cards)
        self.notes.update(other.notes)

    def problems(self) -> Counter[tuple[str, str]]:
        """The skipped lines that are data problems (not merely types the rules do not read)."""
        return Counter({key: count for key, count in self.skipped.items() if key[0] != LineProblem.NOT_READ.value})

    def to_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "resources_screened_by_type": dict(sorted(self.kept.items())),
            "lines_skipped": [
                {"reason": reason, "resource_type": kind or None, "lines": count}
                for (reason, kind), count in sorted(self.skipped.items())
            ],
            "patients": self.patients,
            "patients_screened": self.screened,
            "patients_not_screened_without_patient_resource": self.patients - self.screened,
            "patients_deceased_no_card": self.deceased,
            "patients_with_cards": self.with_cards,
            "cards": [
                {"rule": rule, "indicator": indicator, "cards": count}
                for (rule, indicator), count in sorted(self.cards.items())
            ],
            "data_notes": [{"note": note, "patients": count} for note, count in sorted(self.notes.items())],
        }

    def render(self) -> list[str]:
        """The counts as lines of text for a person."""
        lines = [
            f"Lines read: {self.lines:,}; resources screened: {sum(self.kept.values()):,}",
            f"Patients: {self.patients:,}; screened: {self.screened:,}; with at least one card: {self.with_cards:,}",
        ]
        if self.deceased:
            lines.append(f"Deceased by the screening time (no card, as on the hook): {self.deceased:,}")
        if self.patients > self.screened:
            lines.append(
                f"Not screened (no Patient resource in the export): {self.patients - self.screened:,} patient ids"
            )
        lines.append("Cards by rule:" if self.cards else "Cards: none")
        lines.extend(
            f"  {rule:<4} {indicator:<8} {count:>8,}" for (rule, indicator), count in sorted(self.cards.items())
        )
        problems = self.problems()
        lines.append("Lines not screened (data problems):" if problems else "Lines not screened (data problems): none")
        lines.extend(
            f"  {count:>8,}  {reason}{f' ({kind})' if kind else ''}"
            for (reason, kind), count in sorted(problems.items())
        )
        unread = {kind: count for (reason, kind), count in self.skipped.items() if reason == LineProblem.NOT_READ.value}
        if unread:
            shown = ", ".join(f"{kind} {count:,}" for kind, count in sorted(unread.items()))
            lines.append(f"Resources of types the rules do not read (counted, not screened): {shown}")
        if self.notes:
            lines.append("Data notes from the screener (patients):")
            lines.extend(f"  {count:>8,}  {note}" for note, count in sorted(self.notes.items()))
        return lines

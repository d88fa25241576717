"""The worklist, sorted by urgency on disk, written as CSV and NDJSON.

Urgency: critical before warning before info; within an indicator, the rules in the
engine's precedence order (§2.3: R1 before R7, R4a, R2, ...); then patient id. A patient
has at most one card per rule, so the order is total and both engines write the same
bytes for the same export.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import orjson

from service.clinical.rules import RULES_BY_ID
from service.population.patients import WorklistRow
from service.population.scratch import ScratchFile

__all__ = ["CSV_COLUMNS", "SortedWorklist", "urgency"]

CSV_COLUMNS = ("patient_id", "rule", "indicator", "summary", "evidence", "whole_spine_mri")
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def urgency(row: WorklistRow) -> tuple[int, int, str]:
    """The sort key: most urgent first."""
    rule = RULES_BY_ID.get(row.rule)
    return _SEVERITY.get(row.indicator, len(_SEVERITY)), rule.rank if rule else 1_000, row.patient_id


class SortedWorklist(ScratchFile):
    """Rows in any order in, most urgent first out; held in a scratch SQLite file, not in memory."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "CREATE TABLE rows (severity INTEGER, rank INTEGER, patient TEXT, body BLOB);")

    def add(self, rows: tuple[WorklistRow, ...]) -> None:
        self._connection.executemany(
            "INSERT INTO rows VALUES (?, ?, ?, ?)", [(*urgency(row), orjson.dumps(row.to_json())) for row in rows]
        )

    def rows(self) -> Iterator[WorklistRow]:
        cursor = self._connection.execute("SELECT body FROM rows ORDER BY severity, rank, patient, body")
        for (body,) in cursor:
            yield WorklistRow.from_json(orjson.loads(body))

    def write(self, out_dir: Path) -> int:
        """``worklist.csv`` and ``worklist.ndjson`` in ``out_dir``; the number of rows."""
        count = 0
        with (
            (out_dir / "worklist.csv").open("w", newline="", encoding="utf-8") as csv_file,
            (out_dir / "worklist.ndjson").open("wb") as ndjson_file,
        ):
            writer = csv.writer(csv_file)
            writer.writerow(CSV_COLUMNS)
            for row in self.rows():
                writer.writerow(
                    (row.patient_id, row.rule, row.indicator, row.summary, " ".join(row.evidence), row.whole_spine_mri)
                )
                ndjson_file.write(orjson.dumps(row.to_json()) + b"\n")
                count += 1
        return count

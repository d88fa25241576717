"""Resources grouped by patient on disk (SQLite), so memory stays bounded however large the export.

Lines go in as they are read, in any order; :meth:`PatientGroups.patients` gives them back
one patient at a time, ordered by patient id and, within a patient, in reading order.
Only one patient's resources are ever held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from service.population.scratch import ScratchFile

__all__ = ["PatientGroups"]

# Rows per executemany: large enough to amortise the call, small enough to stay in cache.
_BATCH = 5_000


class PatientGroups(ScratchFile):
    """A temporary SQLite file of (patient, resource type, line); a context manager."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "PRAGMA temp_store=FILE; CREATE TABLE resources (seq INTEGER PRIMARY KEY, patient TEXT NOT NULL,"
            " kind TEXT NOT NULL, body BLOB NOT NULL);",
        )
        self._pending: list[tuple[str, str, bytes]] = []
        self._indexed = False

    def add(self, patient_id: str, resource_type: str, raw: bytes) -> None:
        self._pending.append((patient_id, resource_type, raw))
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._connection.executemany("INSERT INTO resources (patient, kind, body) VALUES (?, ?, ?)", self._pending)
            self._pending.clear()

    def _ready(self) -> None:
        self._flush()
        if not self._indexed:
            self._connection.execute("CREATE INDEX by_patient ON resources (patient, seq)")
            self._connection.commit()
            self._indexed = True

    def patient_count(self) -> int:
        self._ready()
        count: int = self._connection.execute("SELECT COUNT(DISTINCT patient) FROM resources").fetchone()[0]
        return count

    def patients(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """``(patient id, resources)`` for each patient, ordered by id; resources in reading order."""
        self._ready()
        cursor = self._connection.execute("SELECT patient, body FROM resources ORDER BY patient, seq")
        current: str | None = None
        resources: list[dict[str, Any]] = []
        for patient, body in cursor:
            if patient != current:
                if current is not None:
                    yield current, resources
                current, resources = patient, []
            resources.append(orjson.loads(body))
        if current is not None:
            yield current, resources

"""The local engine: stream the export once into per-patient groups on disk, then screen each patient.

Memory holds one line and one patient at a time; the grouping and the worklist's order
live in SQLite files under a scratch folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from service.clinical.outcome import Screener
from service.population.diskgroups import PatientGroups
from service.population.export import ExportFolder, PatientLine, classify_line, read_lines
from service.population.patients import screen_patient
from service.population.progress import Progress
from service.population.tally import Tally
from service.population.worklist import SortedWorklist

__all__ = ["grouped_export", "screen_local"]


@contextmanager
def grouped_export(folder: ExportFolder, work_dir: Path, tally: Tally, progress: Progress) -> Iterator[PatientGroups]:
    """Every line of ``folder`` classified and counted in ``tally``; the kept ones grouped by patient."""
    with PatientGroups(work_dir / "groups.sqlite3") as groups:
        progress.phase("Reading the export", len(folder.files), "files")
        references = folder.references()
        for file in folder.files:
            for raw in read_lines(file.path):
                line = classify_line(raw, references=references, error_file=file.error_file)
                tally.count_line(line)
                if isinstance(line, PatientLine):
                    groups.add(line.patient_id, line.resource_type, line.raw)
            progress.advance()
        yield groups


def screen_local(
    folder: ExportFolder, at: datetime, screener: Screener, work_dir: Path, progress: Progress, sink: SortedWorklist
) -> Tally:
    """Screen every patient of ``folder`` at ``at``; rows go to ``sink``; the counts are returned."""
    tally = Tally()
    references = folder.references()
    with grouped_export(folder, work_dir, tally, progress) as groups:
        progress.phase("Screening patients", groups.patient_count(), "patients")
        for patient_id, resources in groups.patients():
            result = screen_patient(screener, patient_id, resources, at, references=references)
            tally.count_patient(result)
            sink.add(result.rows)
            progress.advance()
    return tally

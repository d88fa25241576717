"""The Spark engine: the same classification and the same screener, run in Spark executors.

The export's lines become an RDD in reading order (files in name order, lines in file
order, numbered with ``zipWithIndex``), each classified by :func:`classify_line`; the kept
ones are grouped by patient (``groupByKey``), put back in reading order and handed to
:func:`screen_patient` with the driver's screener, broadcast to the executors. Only the
per-patient results come back to the driver, where they are counted and sorted exactly as
the local engine does: the two write the same worklist for the same export.

Grouping is done on RDDs rather than with ``applyInPandas``: measured on this project's
machine kind, Spark ``groupByKey`` screened 2,300-2,500 patients/s, ``applyInPandas``
475-715/s (docs/population.md). PySpark is the ``spark`` extra: ``pip install
'mscc-cds[spark]'``, and Java 17 or later.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from service.clinical.outcome import Screener
from service.fhir.integrity import PatientReferences
from service.population.export import ExportFolder, PatientLine, SkippedLine, classify_line
from service.population.patients import PatientResult, screen_patient
from service.population.progress import Progress
from service.population.tally import Tally, line_key
from service.population.worklist import SortedWorklist

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["screen_spark", "spark_session"]


def spark_session(master: str, local_dir: Path) -> SparkSession:
    """The active session if there is one (a test's, a notebook's), else a new one on ``master``."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Executors must run this interpreter (with this package), not whatever python3 is on PATH;
    # a local master binds to loopback, which needs no resolvable host name.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        SparkSession.builder.master(master)
        .appName("mscc-cds population")
        .config("spark.ui.enabled", "false")
        .config("spark.local.dir", str(local_dir))
        .getOrCreate()
    )


def _classify_text(text: str, *, references: PatientReferences, error_file: bool) -> PatientLine | SkippedLine:
    return classify_line(text.encode("utf-8"), references=references, error_file=error_file)


def _keyed_by_patient(pair: tuple[PatientLine | SkippedLine, int]) -> list[tuple[str, tuple[int, bytes]]]:
    line, index = pair
    return [(line.patient_id, (index, line.raw))] if isinstance(line, PatientLine) else []


def _screen_group(
    screener: Any, at: datetime, references: PatientReferences, group: tuple[str, Iterable[tuple[int, bytes]]]
) -> PatientResult:
    patient_id, lines = group
    resources = [orjson.loads(raw) for _, raw in sorted(lines)]
    return screen_patient(screener.value, patient_id, resources, at, references=references)


def screen_spark(
    folder: ExportFolder,
    at: datetime,
    screener: Screener,
    master: str,
    work_dir: Path,
    progress: Progress,
    sink: SortedWorklist,
) -> Tally:
    """Screen every patient of ``folder`` at ``at`` on Spark; rows go to ``sink``; the counts are returned."""
    from pyspark import StorageLevel

    tally = Tally()
    if not folder.files:
        return tally
    created = _active_session() is None
    spark = spark_session(master, work_dir)
    try:
        context = spark.sparkContext
        progress.phase(f"Reading the export (Spark {context.master})", len(folder.files), "files")
        parts = [
            context.textFile(str(file.path.resolve()))
            .filter(lambda text: bool(text.strip()))
            .map(partial(_classify_text, references=folder.references(), error_file=file.error_file))
            for file in folder.files
        ]
        lines = context.union(parts).zipWithIndex().persist(StorageLevel.MEMORY_AND_DISK)
        tally.count_line_keys(lines.map(lambda pair: line_key(pair[0])).countByValue())
        progress.advance(len(folder.files))
        kept = lines.flatMap(_keyed_by_patient)
        shared = context.broadcast(screener)
        results = kept.groupByKey().map(partial(_screen_group, shared, at, folder.references()))
        progress.phase("Screening patients (Spark)", None, "patients")
        for result in results.toLocalIterator():
            tally.count_patient(result)
            sink.add(result.rows)
            progress.advance()
        lines.unpersist()
    finally:
        if created:
            spark.stop()
    return tally


def _active_session() -> SparkSession | None:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()

"""``population``: screen an export with the chosen engine and write the worklist and the summary."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from service.clinical.engine import ClinicalScreener
from service.clinical.knowledge import load_knowledge_version
from service.clinical.valuesets import ValueSetLibrary
from service.population.export import ExportFolder, find_export
from service.population.local import screen_local
from service.population.progress import Progress
from service.population.tally import Tally
from service.population.worklist import SortedWorklist
from service.settings import Settings

__all__ = ["Engine", "PopulationRun", "build_screener", "run_population"]

Engine = Literal["local", "spark"]


def build_screener(settings: Settings) -> ClinicalScreener:
    """The screener the hook uses (``create_app``): the same value sets, the same policy."""
    return ClinicalScreener(ValueSetLibrary.load(settings.profiles_dir / "valuesets"), settings.clinical)


@dataclass(frozen=True, slots=True)
class PopulationRun:
    at: datetime
    engine: Engine
    folder: ExportFolder
    tally: Tally
    worklist_rows: int
    knowledge_version: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "engine": self.engine,
            "knowledge_version": self.knowledge_version,
            "export": {
                "files": [file.path.name for file in self.folder.files],
                "transaction_time": self.folder.transaction_time,
                "listed_in_manifest_but_missing": list(self.folder.missing),
            },
            "worklist_rows": self.worklist_rows,
            "seconds": round(self.seconds, 3),
            **self.tally.to_json(),
        }

    def render(self) -> str:
        lines = [
            f"Population screening at {self.at.isoformat()} (engine {self.engine}, knowledge {self.knowledge_version})",
            f"Export: {len(self.folder.files)} files"
            + (f", transactionTime {self.folder.transaction_time}" if self.folder.transaction_time else ""),
        ]
        if self.folder.missing:
            lines.append(f"Listed in the manifest but missing: {', '.join(self.folder.missing)}")
        lines.extend(self.tally.render())
        lines.append(f"Worklist: {self.worklist_rows:,} cards in worklist.csv / worklist.ndjson ({self.seconds:.1f} s)")
        return "\n".join(lines) + "\n"


def run_population(
    export_dir: Path,
    out_dir: Path,
    at: datetime,
    settings: Settings,
    progress: Progress,
    *,
    engine: Engine = "local",
    master: str = "local[*]",
) -> PopulationRun:
    """Screen every patient of ``export_dir`` at ``at``; write the worklist and the summary to ``out_dir``."""
    started = time.monotonic()
    folder = find_export(export_dir)
    knowledge_version = load_knowledge_version(settings.profiles_dir)
    screener = build_screener(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mscc-population-") as scratch:
        work_dir = Path(scratch)
        with SortedWorklist(work_dir / "worklist.sqlite3") as sink:
            if engine == "spark":
                from service.population.spark import screen_spark

                tally = screen_spark(folder, at, screener, master, work_dir, progress, sink)
            else:
                tally = screen_local(folder, at, screener, work_dir, progress, sink)
            rows = sink.write(out_dir)
    run = PopulationRun(at, engine, folder, tally, rows, knowledge_version, time.monotonic() - started)
    (out_dir / "summary.json").write_bytes(orjson.dumps(run.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    (out_dir / "summary.txt").write_text(run.render(), encoding="utf-8")
    return run

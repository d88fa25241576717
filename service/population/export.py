"""Reading a Bulk FHIR export folder: its files, and each NDJSON line classified.

A ``$export`` client leaves one NDJSON file (or several) per resource type, optionally
gzipped, and may keep the server's completion manifest (``{"transactionTime": ...,
"output": [{"type": "Patient", "url": ".../Patient.ndjson"}], "error": [...]}``) beside
them. Every line is classified by :func:`classify_line`, the one place both engines use:
a resource for a patient, or a problem that is counted and reported. Nothing is fatal
and nothing is dropped silently.

Whose resource a line is, is read by the hook's own :class:`~service.fhir.integrity.PatientReferences`
(the reading :class:`~service.fhir.integrity.PatientScope` uses): a resource goes to a
patient here exactly when the hook would keep it for that patient. The export's server,
for absolute references, is the one the manifest's ``request`` URL names.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import orjson

from service.clinical.recordparts import Exclusion
from service.clinical.resource_reader import READ_TYPES
from service.fhir.integrity import PatientReferences

__all__ = [
    "ExportFile",
    "ExportFolder",
    "LineProblem",
    "PatientLine",
    "SkippedLine",
    "classify_line",
    "export_server",
    "find_export",
    "is_resource_type",
    "read_lines",
]

_SUFFIXES = (".ndjson", ".ndjson.gz")


class LineProblem(StrEnum):
    """Why a line was not screened; each is counted (by resource type where there is one)."""

    BAD_JSON = "not valid JSON"
    NOT_A_RESOURCE = "not a FHIR resource (no resourceType)"
    UNKNOWN_TYPE = "unknown resource type"
    NO_PATIENT = "no patient reference"
    UNRESOLVED = "a patient reference that cannot be resolved (contained, urn:uuid, another server, identifier only)"
    NOT_A_PATIENT = "refers to something that is no patient (a Group, a Device, ...)"
    NOT_READ = "a resource type the rules do not read"
    ERROR_FILE = "an OperationOutcome of the export's error files"


@dataclass(frozen=True, slots=True)
class PatientLine:
    """A resource the screener reads, with the patient it belongs to (the line kept as is)."""

    patient_id: str
    resource_type: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class SkippedLine:
    problem: LineProblem
    #: the resource type when the line has one (unknown types included, as written)
    resource_type: str | None = None


@dataclass(frozen=True, slots=True)
class ExportFile:
    path: Path
    #: the manifest's "error" files hold OperationOutcomes about the export itself
    error_file: bool = False


@dataclass(frozen=True, slots=True)
class ExportFolder:
    files: tuple[ExportFile, ...]
    #: the manifest's transactionTime, when there is a manifest
    transaction_time: str | None
    #: files the manifest lists that are not in the folder
    missing: tuple[str, ...]
    #: the FHIR server the export came from (the manifest's ``request`` URL): absolute
    #: references count under it only, as under the hook's ``fhirServer``
    fhir_server: str | None = None

    def references(self) -> PatientReferences:
        """The reading of patient references for this export's lines."""
        return PatientReferences(self.fhir_server)


@lru_cache(maxsize=512)
def is_resource_type(name: str) -> bool:
    """Whether ``name`` is a FHIR R4 (R4B) resource type."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource as ResourceModel

    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    # Data types (Coding, Quantity, ...) are models too, but never a line of an export.
    return isinstance(model, type) and issubclass(model, ResourceModel)


_WHY_NO_PATIENT = {
    Exclusion.NO_PATIENT: LineProblem.NO_PATIENT,
    Exclusion.UNRESOLVED: LineProblem.UNRESOLVED,
    Exclusion.ANOTHER_PATIENT: LineProblem.NOT_A_PATIENT,
}


def classify_line(raw: bytes, *, references: PatientReferences, error_file: bool = False) -> PatientLine | SkippedLine:
    """One NDJSON line: a resource the screener reads and its patient, or why not."""
    try:
        resource: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return SkippedLine(LineProblem.BAD_JSON)
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(kind, str) or not kind:
        return SkippedLine(LineProblem.NOT_A_RESOURCE)
    if error_file:
        return SkippedLine(LineProblem.ERROR_FILE, kind)
    if kind not in READ_TYPES:
        return SkippedLine(LineProblem.NOT_READ if is_resource_type(kind) else LineProblem.UNKNOWN_TYPE, kind)
    patient = references.patient_of(resource)
    if isinstance(patient, Exclusion):
        return SkippedLine(_WHY_NO_PATIENT[patient], kind)
    return PatientLine(patient, kind, raw.strip())


def _manifest(directory: Path) -> dict[str, Any] | None:
    """The export's completion manifest: ``manifest.json``, else any JSON file with an ``output`` list."""
    candidates = sorted(directory.glob("*.json"), key=lambda path: (path.name != "manifest.json", path.name))
    for path in candidates:
        try:
            content = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(content, dict) and isinstance(content.get("output"), list):
            return content
    return None


def _file_names(entries: object) -> list[str]:
    names: list[str] = []
    for entry in entries if isinstance(entries, list) else ():
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and url:
            names.append(PurePosixPath(urlsplit(url).path).name)
    return names


def find_export(directory: Path) -> ExportFolder:
    """The NDJSON files of ``directory`` (``*.ndjson``, ``*.ndjson.gz``), in name order.

    Files the manifest lists under ``error`` are marked as such; files it lists but the
    folder lacks are reported. Files the manifest does not list are read all the same:
    a resource in the folder is never ignored.
    """
    manifest = _manifest(directory)
    errors = set(_file_names(manifest.get("error"))) if manifest else set()
    listed = [*_file_names(manifest.get("output")), *errors] if manifest else []
    files = sorted(
        path for path in directory.iterdir() if path.is_file() and any(path.name.endswith(s) for s in _SUFFIXES)
    )
    present = {path.name for path in files}
    time = manifest.get("transactionTime") if manifest else None
    request = manifest.get("request") if manifest else None
    return ExportFolder(
        files=tuple(ExportFile(path, error_file=path.name in errors) for path in files),
        transaction_time=time if isinstance(time, str) else None,
        missing=tuple(sorted(name for name in set(listed) - present)),
        fhir_server=export_server(request) if isinstance(request, str) else None,
    )


# The kick-off URL of a system, Patient or Group export: [base]/$export, [base]/Patient/$export,
# [base]/Group/{id}/$export (Bulk Data Access IG).
_KICK_OFF = re.compile(r"^(?P<base>.+?)(?:/Patient|/Group/[A-Za-z0-9\-.]{1,64})?/\$export(?:[?#].*)?$")


def export_server(request: str) -> str | None:
    """The FHIR base URL of the server an export was requested from, by its kick-off ``request`` URL."""
    match = _KICK_OFF.match(request.strip())
    return match.group("base") if match and "://" in match.group("base") else None


def read_lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines of an NDJSON file, gunzipped when its name ends in ``.gz``."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        for line in stream:
            if line.strip():
                yield line

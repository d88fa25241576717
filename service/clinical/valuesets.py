"""The terminology knowledge base: the ValueSets in ``profiles/valuesets``, loaded once.

Each file is a FHIR R4 ValueSet whose ``compose.include`` lists explicit codes (no
filters, no references to other value sets): the rules need exact, reviewable
membership that does not depend on a terminology server at run time.

Loading builds one index, ``(system, code) -> ids of the ValueSets containing it``, so a
single dictionary look-up per coding answers membership for every concept group.
Codes are matched on system URI plus code, never on display: displays drift between
editions, and the same ICD string means different things in ICD-10-CM and WHO ICD-10.

Errors: ``KnowledgeError`` (malformed JSON, a resource that is not a valid R4B ValueSet,
a missing id/url/version/title, an id that does not match its file name, a duplicate id,
an include without explicit codes, a duplicate code). It is raised at start-up,
so a broken knowledge base stops the service instead of silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson
from fhir.resources.R4B.valueset import ValueSet, ValueSetComposeIncludeConcept
from pydantic import ValidationError

from service.errors import MsccError
from service.paths import DEFAULT_PROFILES_DIR

__all__ = [
    "DEFAULT_PROFILES_DIR",
    "DEFAULT_VALUESETS_DIR",
    "KnowledgeError",
    "Terminology",
    "ValueSetLibrary",
    "ValueSetRecord",
]

#: Where ``ValueSetLibrary.load`` looks when given no folder.
DEFAULT_VALUESETS_DIR = DEFAULT_PROFILES_DIR / "valuesets"

Coding = tuple[str, str]


class KnowledgeError(MsccError):
    """The knowledge base (value sets or manifest) is malformed, inconsistent or stale."""


class Terminology(Protocol):
    """What reading FHIR data needs of the value sets: :class:`ValueSetLibrary` is one, tests pass smaller ones."""

    @property
    def ids(self) -> frozenset[str]: ...

    @property
    def codes(self) -> frozenset[str]: ...

    def groups_of(self, system: str, code: str) -> frozenset[str]: ...

    def display_of(self, system: str, code: str) -> str | None: ...


@dataclass(frozen=True)
class ValueSetRecord:
    """One loaded ValueSet: identity, version and its ``(system, code)`` members."""

    id: str
    url: str
    version: str
    title: str
    codes: frozenset[Coding]


class ValueSetLibrary:
    """All value sets of one folder, indexed by coding. Immutable once loaded."""

    def __init__(
        self,
        records: Mapping[str, ValueSetRecord],
        index: Mapping[Coding, frozenset[str]],
        displays: Mapping[Coding, str],
    ) -> None:
        self._records = dict(records)
        self._index = dict(index)
        self._displays = dict(displays)
        self._codes = frozenset(code for _, code in self._index)
        self._ids = frozenset(self._records)

    @classmethod
    def load(cls, path: Path = DEFAULT_VALUESETS_DIR) -> ValueSetLibrary:
        """Parse and validate every ``*.json`` in ``path``; raise ``KnowledgeError`` on any defect."""
        if not path.is_dir():
            raise KnowledgeError(f"value set folder not found: {path}")
        files = sorted(path.glob("*.json"))
        if not files:
            raise KnowledgeError(f"no value sets (*.json) in {path}")
        records: dict[str, ValueSetRecord] = {}
        members: dict[Coding, set[str]] = {}
        displays: dict[Coding, str] = {}
        for file in files:
            record, file_displays = _read_valueset(file)
            if record.id in records:
                raise KnowledgeError(f"{file.name}: duplicate ValueSet id {record.id!r}")
            if record.id != file.stem:
                raise KnowledgeError(f"{file.name}: id {record.id!r} does not match the file name")
            records[record.id] = record
            for coding in record.codes:
                members.setdefault(coding, set()).add(record.id)
            # Files are read in name order, so the first display seen for a coding wins
            # deterministically; displays are only shown to people, never matched.
            for coding, display in file_displays.items():
                displays.setdefault(coding, display)
        index = {coding: frozenset(ids) for coding, ids in members.items()}
        return cls(records, index, displays)

    @property
    def ids(self) -> frozenset[str]:
        """Ids of every loaded ValueSet."""
        return self._ids

    @property
    def codes(self) -> frozenset[str]:
        """Every code of every ValueSet, whatever its system: a code outside it matches nothing."""
        return self._codes

    def groups_of(self, system: str, code: str) -> frozenset[str]:
        """Ids of every ValueSet that contains ``system|code`` (empty if none)."""
        return self._index.get((system, code), frozenset())

    def contains(self, valueset_id: str, system: str, code: str) -> bool:
        """Whether ValueSet ``valueset_id`` contains ``system|code``.

        An id with no loaded ValueSet has no members (some concept groups have no
        verified code yet; see ``profiles/valuesets/README.md``), so this is False.
        """
        return valueset_id in self.groups_of(system, code)

    def get(self, valueset_id: str) -> ValueSetRecord:
        """The loaded ValueSet ``valueset_id``; ``KeyError`` if there is none."""
        return self._records[valueset_id]

    def codes_of(self, valueset_id: str) -> frozenset[Coding]:
        """The ``(system, code)`` members of ``valueset_id``; empty when it is not loaded (as in :meth:`contains`)."""
        record = self._records.get(valueset_id)
        return record.codes if record is not None else frozenset()

    def display_of(self, system: str, code: str) -> str | None:
        """The display recorded for ``system|code`` in the value sets, if any."""
        return self._displays.get((system, code))


def _read_valueset(file: Path) -> tuple[ValueSetRecord, dict[Coding, str]]:
    try:
        raw = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise KnowledgeError(f"{file.name}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("resourceType") != "ValueSet":
        raise KnowledgeError(f"{file.name}: not a ValueSet resource")
    try:
        valueset = ValueSet.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{file.name}: invalid FHIR R4B ValueSet: {exc}") from exc
    identity = _required_text(file, valueset, ("id", "url", "version", "title"))
    includes = valueset.compose.include if valueset.compose else None
    if not includes:
        raise KnowledgeError(f"{file.name}: compose.include is empty")
    codes: set[Coding] = set()
    displays: dict[Coding, str] = {}
    for position, include in enumerate(includes):
        for coding, display in _include_codings(file, position, include.system, include.concept):
            if coding in codes:
                raise KnowledgeError(f"{file.name}: duplicate code {coding[0]}|{coding[1]}")
            codes.add(coding)
            if display:
                displays[coding] = display
    record = ValueSetRecord(
        id=identity["id"],
        url=identity["url"],
        version=identity["version"],
        title=identity["title"],
        codes=frozenset(codes),
    )
    return record, displays


def _required_text(file: Path, valueset: ValueSet, fields: Iterable[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for field in fields:
        value = getattr(valueset, field, None)
        if not isinstance(value, str) or not value.strip():
            raise KnowledgeError(f"{file.name}: ValueSet.{field} is required")
        values[field] = value
    return values


def _include_codings(
    file: Path, position: int, system: str | None, concepts: Sequence[ValueSetComposeIncludeConcept] | None
) -> list[tuple[Coding, str | None]]:
    # Filters and valueSet references would need a terminology server to expand;
    # the service matches explicit codes only, so an include must name its codes.
    # Missing, blank or padded codes never get here: the R4B model rejects them.
    if not system:
        raise KnowledgeError(f"{file.name}: compose.include[{position}] has no system")
    if not concepts:
        raise KnowledgeError(f"{file.name}: compose.include[{position}] ({system}) lists no codes")
    return [((system, str(concept.code)), concept.display) for concept in concepts]

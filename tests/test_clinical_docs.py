"""The clinical design in docs/clinical/ is what code, ValueSets and PlanDefinitions cite, and every citation resolves.

A citation is ``docs/clinical/<file>.md#<anchor>`` (optionally followed by ``row N`` for the concept-group table);
inside docs/clinical/ Markdown links to ``<file>.md#<anchor>`` and ``#<anchor>`` count too. The reference notes
the design was first written from (clinical-rules.md, codes-verification.md) are not part of the repository, so
nothing may cite them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.markdown import REPO, anchors, table_rows

CLINICAL = REPO / "docs" / "clinical"
#: Where citations live: the code, the protocol layer, the FHIR artefacts, the README and the docs.
CITING = ("service", "cds_hooks", "profiles", "docs", "README.md")
_TEXT_SUFFIXES = frozenset({".py", ".json", ".md", ".txt", ".toml", ".yaml", ".yml"})
_CITATION = re.compile(r"docs/clinical/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?(?: row (\d+))?")
_LOCAL_LINK = re.compile(r"\]\((?:\./)?([A-Za-z0-9_.-]+\.md)?#([A-Za-z0-9_-]+)\)")
#: Reserved for the patient-integrity work, which writes them; the index may name them before they exist.
_RESERVED = frozenset({"patient-integrity.md", "data-quality.md"})


def _files(roots: tuple[str, ...]) -> Iterator[Path]:
    for root in roots:
        path = REPO / root
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for candidate in candidates:
            if candidate.is_file() and candidate.suffix in _TEXT_SUFFIXES and ".venv" not in candidate.parts:
                yield candidate


def _citations() -> list[tuple[str, str, str | None, int | None]]:
    """``(where, file, anchor, row)`` for every citation of docs/clinical in the citing trees."""
    found: list[tuple[str, str, str | None, int | None]] = []
    for path in _files(CITING):
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(REPO))
        for match in _CITATION.finditer(text):
            row = int(match.group(3)) if match.group(3) else None
            found.append((where, match.group(1), match.group(2), row))
        if path.parent == CLINICAL:
            for match in _LOCAL_LINK.finditer(text):
                found.append((where, match.group(1) or path.name, match.group(2), None))
    return found


CITATIONS = _citations()


def test_the_code_and_the_artefacts_cite_the_clinical_design() -> None:
    # Not vacuous: every value-set code names its source in docs/clinical, every rule module cites it.
    places = {where for where, *_ in CITATIONS}
    assert len(CITATIONS) > 500
    assert {"service/clinical/rules/mscc.py", "service/clinical/rules/suppression.py"} <= places
    assert "profiles/plandefinitions/R9.json" in places
    assert sum(where.startswith("profiles/valuesets/") for where in places) > 30


def test_every_citation_resolves_to_a_heading() -> None:
    headings = {path.name: anchors(path) for path in CLINICAL.glob("*.md")}
    broken = sorted(
        f"{where}: docs/clinical/{name}#{anchor}"
        for where, name, anchor, _ in CITATIONS
        if name not in _RESERVED and (name not in headings or (anchor is not None and anchor not in headings[name]))
    )
    assert not broken, "citations to a missing file or heading:\n" + "\n".join(broken)


def test_every_cited_concept_group_row_exists() -> None:
    rows = {int(cells[0]) for cells in table_rows(CLINICAL / "code-lists.md", "concept-groups")}
    assert rows == set(range(1, 23))
    cited = {row for _, name, anchor, row in CITATIONS if row is not None and anchor == "concept-groups"}
    assert cited and cited <= rows


@pytest.mark.parametrize("reference", ["clinical-rules.md", "codes-verification.md", "shared/reference"])
def test_nothing_cites_the_reference_notes(reference: str) -> None:
    citing = sorted(
        str(path.relative_to(REPO))
        for path in _files((*CITING, "tests"))
        if path.resolve() != Path(__file__).resolve() and reference in path.read_text(encoding="utf-8")
    )
    assert not citing, f"{reference} is not in the repository; cite docs/clinical instead: {citing}"


def test_the_reserved_files_are_named_in_the_index() -> None:
    index = (CLINICAL / "README.md").read_text(encoding="utf-8")
    assert all(name in index for name in _RESERVED)


def test_the_readme_links_the_clinical_design_and_the_hazard_log() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/clinical/README.md" in readme and "docs/clinical/hazard-log.md" in readme

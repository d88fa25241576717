"""The hazard log (docs/clinical/hazard-log.md) stays true: every test it names exists, every control has evidence,
and every risk rating is the one its matrix gives.

Test ids are resolved by parsing the named test files (top-level ``test_*`` functions and ``Class::test_*``
methods), not by collecting the suite: fast, and independent of fixtures and services.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from tests.markdown import REPO, table_rows

HAZARD_LOG = REPO / "docs" / "clinical" / "hazard-log.md"
_NODE_ID = re.compile(r"`(tests/[A-Za-z0-9_/]+\.py)::([A-Za-z0-9_:]+)(?:\[[^\]`]*\])?`")
_RATING = re.compile(
    r"(Minor|Significant|Considerable|Major|Catastrophic) × (Very high|High|Medium|Low|Very low) = (\d)"
)
_SEVERITIES = ("Minor", "Significant", "Considerable", "Major", "Catastrophic")
_HAZARD = re.compile(r"^### (H\d{2}) ", re.MULTILINE)


@cache
def _defined(path: Path) -> frozenset[str]:
    """``name`` of each test function and ``Class::name`` of each test method in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
    return frozenset(name for name in names if name.split("::")[-1].startswith("test_"))


def _text() -> str:
    return HAZARD_LOG.read_text(encoding="utf-8")


def _node_ids(text: str) -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in _NODE_ID.finditer(text)]


def _missing(text: str) -> list[str]:
    missing = []
    for file, name in _node_ids(text):
        path = REPO / file
        if not path.is_file() or name not in _defined(path):
            missing.append(f"{file}::{name}")
    return missing


def _sections() -> dict[str, str]:
    """Each hazard's section text, by id."""
    text = _text()
    starts = [(match.group(1), match.start()) for match in _HAZARD.finditer(text)]
    ends = [start for _, start in starts[1:]] + [text.index("\n## ", starts[-1][1])]
    return {hazard: text[start:end] for (hazard, start), end in zip(starts, ends, strict=True)}


def test_every_named_test_exists() -> None:
    assert len(_node_ids(_text())) > 60
    missing = _missing(_text())
    assert not missing, "the hazard log names tests that no longer exist:\n" + "\n".join(missing)


def test_a_removed_test_is_noticed(tmp_path: Path) -> None:
    # The check itself can fail: a log naming a test that is not in its file is reported.
    real = "`tests/test_hazard_log.py::test_every_named_test_exists`"
    gone = "`tests/test_hazard_log.py::test_that_was_deleted[param]`"
    elsewhere = "`tests/no_such_file.py::test_anything`"
    assert _missing(f"| a control | {real} |") == []
    assert _missing(f"| a control | {real}, {gone} | {elsewhere} |") == [
        "tests/test_hazard_log.py::test_that_was_deleted",
        "tests/no_such_file.py::test_anything",
    ]


def test_every_control_is_verified_by_a_test_or_says_why_not() -> None:
    sections = _sections()
    assert len(sections) >= 10
    for hazard, section in sections.items():
        lines = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Control")]
        controls = [line for line in lines if not set(line) <= set("|-: ")]
        assert controls, f"{hazard} has no controls"
        for control in controls:
            assert _NODE_ID.search(control) or "procedural" in control or "pending" in control, f"{hazard}: {control}"
        tested = [control for control in controls if _NODE_ID.search(control)]
        assert tested or "pending" in section, f"{hazard}: no control is verified by a test"


def test_every_rating_is_the_one_the_matrix_gives() -> None:
    matrix = {
        row[0]: dict(zip(_SEVERITIES, (int(cell) for cell in row[1:]), strict=True))
        for row in table_rows(HAZARD_LOG, "risk-matrix")
        if len(row) == 1 + len(_SEVERITIES)
    }
    assert len(matrix) == 5
    ratings = _RATING.findall(_text())
    assert len(ratings) >= 2 * len(_sections())
    wrong = [f"{sev} × {lik} = {r}" for sev, lik, r in ratings if matrix[lik][sev] != int(r)]
    assert not wrong, f"ratings that disagree with the matrix: {wrong}"


def test_the_summary_lists_every_hazard() -> None:
    summary = {row[0].split("]")[0].lstrip("[") for row in table_rows(HAZARD_LOG, "summary")}
    assert summary == set(_sections())

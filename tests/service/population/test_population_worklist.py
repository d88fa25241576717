"""The worklist's order, the disk grouping, and the progress lines."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from service.clinical.resource_reader import READ_TYPES, Reader
from service.clinical.valuesets import ValueSetLibrary
from service.population.diskgroups import PatientGroups
from service.population.patients import WorklistRow
from service.population.progress import PlainProgress, open_progress
from service.population.worklist import SortedWorklist, urgency

rows = st.builds(
    WorklistRow,
    patient_id=st.from_regex(r"\Ap[0-9]{1,3}\Z"),
    rule=st.sampled_from(["R1", "R2", "R2b", "R4a", "R4b", "R4c", "R5", "R6a", "R6b", "R6c", "R7"]),
    indicator=st.sampled_from(["critical", "warning", "info"]),
    summary=st.text(max_size=20),
    evidence=st.lists(st.from_regex(r"\ACondition/c[0-9]\Z"), max_size=3).map(tuple),
    whole_spine_mri=st.sampled_from(["none", "ordered", "done"]),
)


@given(st.lists(rows, max_size=30, unique_by=lambda row: (row.patient_id, row.rule)))
def test_the_worklist_comes_out_most_urgent_first_whatever_the_order_in(items: list[WorklistRow]) -> None:
    with SortedWorklist(Path(":memory:")) as sink:
        for row in reversed(items):
            sink.add((row,))
        out = list(sink.rows())
    assert sorted(out, key=urgency) == out
    assert sorted(out, key=urgency) == sorted(items, key=urgency)


def test_critical_comes_before_warning_and_rules_follow_precedence() -> None:
    def row(patient: str, rule: str, indicator: str) -> WorklistRow:
        return WorklistRow(patient, rule, indicator, "s", (), "none")

    items = [
        row("a", "R2b", "info"),
        row("b", "R2", "warning"),
        row("c", "R4a", "critical"),
        row("d", "R1", "critical"),
    ]
    assert sorted(items, key=urgency) == [items[3], items[2], items[1], items[0]]


def test_groups_come_back_by_patient_in_reading_order(tmp_path: Path) -> None:
    with PatientGroups(tmp_path / "groups.sqlite3") as groups:
        for index, patient in enumerate(["b", "a", "b", "c", "a"]):
            groups.add(patient, "Condition", b'{"n": %d}' % index)
        assert groups.patient_count() == 3
        assert list(groups.patients()) == [
            ("a", [{"n": 1}, {"n": 4}]),
            ("b", [{"n": 0}, {"n": 2}]),
            ("c", [{"n": 3}]),
        ]


def test_plain_progress_prints_a_line_per_tenth_and_the_end() -> None:
    stream = io.StringIO()
    progress = open_progress(stream)
    assert isinstance(progress, PlainProgress)  # not a terminal
    progress.phase("Screening patients", 20, "patients")
    for _ in range(20):
        progress.advance()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Screening patients: 20 patients ..."
    assert [line for line in lines if "%" in line][-1] == "Screening patients: 100% (20 of 20 patients)"
    assert len([line for line in lines if "%" in line]) == 10
    assert lines[-1].startswith("Screening patients: done, 20 patients in ")


def test_read_types_are_the_types_the_reader_reads() -> None:
    from datetime import UTC, datetime

    reader = Reader(ValueSetLibrary.load(), datetime.now(UTC), ())
    assert set(reader._readers) == READ_TYPES


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar() -> None:
    stream = _Terminal()
    progress = open_progress(stream)
    assert not isinstance(progress, PlainProgress)
    progress.phase("Screening patients", 4, "patients")
    for _ in range(4):
        progress.advance()
    progress.close()
    assert "Screening patients" in stream.getvalue()
    assert "4/4" in stream.getvalue()

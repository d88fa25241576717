"""Reading an export folder: files, manifest, and every line classified, counted, never fatal."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.cli import main
from service.cli.exitcodes import OK
from service.clinical.resource_reader import READ_TYPES
from service.fhir.integrity import PatientReferences
from service.population.export import (
    LineProblem,
    PatientLine,
    SkippedLine,
    classify_line,
    export_server,
    find_export,
    read_lines,
)

AT = "2026-06-01T10:00:00+01:00"
#: an export without a manifest: relative references only
REFERENCES = PatientReferences(None)


def test_a_resource_for_the_rules_is_kept_as_written() -> None:
    raw = b'{"resourceType":"Condition","id":"c","subject":{"reference":"Patient/p"}}\n'
    assert classify_line(raw, references=REFERENCES) == PatientLine("p", "Condition", raw.strip())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", SkippedLine(LineProblem.BAD_JSON)),
        (b'"a string"', SkippedLine(LineProblem.NOT_A_RESOURCE)),
        (b'{"id": "x"}', SkippedLine(LineProblem.NOT_A_RESOURCE)),
        (b'{"resourceType": ""}', SkippedLine(LineProblem.NOT_A_RESOURCE)),
        (b'{"resourceType": "Frobnicator", "id": "x"}', SkippedLine(LineProblem.UNKNOWN_TYPE, "Frobnicator")),
        (b'{"resourceType": "Coding"}', SkippedLine(LineProblem.UNKNOWN_TYPE, "Coding")),
        (b'{"resourceType": "Encounter", "id": "e"}', SkippedLine(LineProblem.NOT_READ, "Encounter")),
        (b'{"resourceType": "Condition", "id": "c"}', SkippedLine(LineProblem.NO_PATIENT, "Condition")),
        (
            b'{"resourceType": "Observation", "subject": {"reference": "Group/1"}}',
            SkippedLine(LineProblem.NOT_A_PATIENT, "Observation"),
        ),
        (
            b'{"resourceType": "Observation", "subject": {"reference": "#p1"}}',
            SkippedLine(LineProblem.UNRESOLVED, "Observation"),
        ),
        (
            b'{"resourceType": "Observation", "subject": {"reference": "https://ehr.example.org/fhir/Patient/p"}}',
            SkippedLine(LineProblem.UNRESOLVED, "Observation"),
        ),
    ],
)
def test_problem_lines_are_classified(raw: bytes, expected: SkippedLine) -> None:
    assert classify_line(raw, references=REFERENCES) == expected


def test_lines_of_an_error_file_are_counted_apart() -> None:
    raw = b'{"resourceType": "OperationOutcome", "issue": []}'
    assert classify_line(raw, references=REFERENCES, error_file=True) == SkippedLine(
        LineProblem.ERROR_FILE, "OperationOutcome"
    )


@given(st.binary(max_size=200))
def test_any_bytes_are_classified_without_raising(raw: bytes) -> None:
    assert isinstance(classify_line(raw, references=REFERENCES), PatientLine | SkippedLine)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=10,
    ),
    st.sampled_from(sorted(READ_TYPES)),
)
def test_any_json_of_a_read_type_is_classified_without_raising(body: object, kind: str) -> None:
    resource = {"resourceType": kind, "subject": body, "patient": body, "id": body}
    assert isinstance(classify_line(json.dumps(resource).encode(), references=REFERENCES), PatientLine | SkippedLine)


def test_the_manifest_marks_error_files_and_reports_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_bytes(b'{"resourceType": "Patient", "id": "p"}\n')
    with gzip.open(tmp_path / "Condition.ndjson.gz", "wb") as stream:
        stream.write(b'{"resourceType": "Condition", "subject": {"reference": "Patient/p"}}\n\n')
    (tmp_path / "errors.ndjson").write_bytes(b'{"resourceType": "OperationOutcome"}\n')
    (tmp_path / "export-status.json").write_bytes(
        orjson.dumps(
            {
                "transactionTime": AT,
                "output": [
                    {"type": "Patient", "url": "https://ehr.example.org/files/Patient.ndjson"},
                    {"type": "Observation", "url": "https://ehr.example.org/files/Observation.ndjson"},
                ],
                "error": [{"type": "OperationOutcome", "url": "https://ehr.example.org/files/errors.ndjson"}],
            }
        )
    )
    folder = find_export(tmp_path)
    assert [(file.path.name, file.error_file) for file in folder.files] == [
        ("Condition.ndjson.gz", False),
        ("Patient.ndjson", False),
        ("errors.ndjson", True),
    ]
    assert folder.transaction_time == AT
    assert folder.missing == ("Observation.ndjson",)
    assert folder.fhir_server is None  # the manifest names no request
    assert list(read_lines(tmp_path / "Condition.ndjson.gz")) == [
        b'{"resourceType": "Condition", "subject": {"reference": "Patient/p"}}\n'
    ]


def test_malformed_lines_are_counted_and_reported_never_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, out = tmp_path / "export", tmp_path / "out"
    export.mkdir()
    (export / "Patient.ndjson").write_bytes(
        b'{"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"}\n'
        b"{truncated\n"
        b'{"resourceType": "Frobnicator"}\n'
    )
    (export / "Condition.ndjson").write_bytes(
        b'{"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},'
        b' "code": {"coding": [{"system": "http://snomed.info/sct", "code": "254637007"}]}}\n'
        b'{"resourceType": "Condition", "id": "c2"}\n'
        b'{"resourceType": "Condition", "id": "c3", "subject": {"reference": "Patient/ghost"}}\n'
        b"[1, 2]\n"
        b'{"resourceType": "Condition", "id": "c4", "subject": {"reference": "#p1"}}\n'
        b'{"resourceType": "Condition", "id": "c5", "subject": {"reference": "Group/lung-clinic"}}\n'
    )
    (export / "Encounter.ndjson").write_bytes(
        b'{"resourceType": "Encounter", "subject": {"reference": "Patient/p1"}}\n'
    )
    assert main(["population", str(export), "--at", AT, "--out", str(out)]) == OK
    summary = orjson.loads((out / "summary.json").read_bytes())
    skipped = {(item["reason"], item["resource_type"]): item["lines"] for item in summary["lines_skipped"]}
    assert skipped == {
        (LineProblem.BAD_JSON.value, None): 1,
        (LineProblem.NOT_A_RESOURCE.value, None): 1,
        (LineProblem.UNKNOWN_TYPE.value, "Frobnicator"): 1,
        (LineProblem.NO_PATIENT.value, "Condition"): 1,
        (LineProblem.UNRESOLVED.value, "Condition"): 1,
        (LineProblem.NOT_A_PATIENT.value, "Condition"): 1,
        (LineProblem.NOT_READ.value, "Encounter"): 1,
    }
    assert summary["lines"] == 10 == sum(skipped.values()) + sum(summary["resources_screened_by_type"].values())
    # "ghost" has a Condition but no Patient resource: counted, not screened (the hook would answer 412)
    assert (summary["patients"], summary["patients_screened"]) == (2, 1)
    assert summary["patients_not_screened_without_patient_resource"] == 1
    text = (out / "summary.txt").read_text(encoding="utf-8")
    assert text == capsys.readouterr().out
    for reason in (
        "not valid JSON",
        "unknown resource type (Frobnicator)",
        "no patient reference (Condition)",
        f"{LineProblem.UNRESOLVED.value} (Condition)",
        f"{LineProblem.NOT_A_PATIENT.value} (Condition)",
    ):
        assert reason in text
    assert "Encounter 1" in text
    assert "Not screened (no Patient resource in the export): 1" in text
    assert (out / "worklist.csv").read_text(encoding="utf-8").splitlines() == [
        "patient_id,rule,indicator,summary,evidence,whole_spine_mri"
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--at", "2026-06-01T10:00:00"], "UTC offset"),
        (["--from", "2026-06-01"], "needs both --from and --to"),
        (["--from", "2026-06-02", "--to", "2026-06-01"], "--to is before --from"),
        (["--from", "2026-06-01", "--to", "2026-06-02", "--step", "1w"], "not a step"),
        (["--from", "2026-06-01", "--to", "2026-06-02", "--engine", "spark"], "local engine only"),
    ],
)
def test_bad_arguments_are_a_usage_error(
    tmp_path: Path, arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["population", str(tmp_path), "--out", str(tmp_path / "out"), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_export_folder_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["population", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no export folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("request_url", "server"),
    [
        ("https://ehr.example.org/fhir/$export", "https://ehr.example.org/fhir"),
        ("https://ehr.example.org/fhir/Patient/$export?_type=Condition", "https://ehr.example.org/fhir"),
        ("https://ehr.example.org/fhir/Group/lung-2026/$export", "https://ehr.example.org/fhir"),
        ("[base]/$export", None),
        ("https://ehr.example.org/fhir/Patient", None),
    ],
)
def test_the_export_server_is_read_from_the_kick_off_request(request_url: str, server: str | None) -> None:
    assert export_server(request_url) == server


def test_absolute_references_count_under_the_server_the_manifest_names(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(
        orjson.dumps({"request": "https://ehr.example.org/fhir/Patient/$export", "output": []})
    )
    references = find_export(tmp_path).references()
    ours = b'{"resourceType":"Condition","subject":{"reference":"https://ehr.example.org/fhir/Patient/p"}}'
    theirs = b'{"resourceType":"Condition","subject":{"reference":"https://other.example.org/fhir/Patient/p"}}'
    assert classify_line(ours, references=references) == PatientLine("p", "Condition", ours)
    assert classify_line(theirs, references=references) == SkippedLine(LineProblem.UNRESOLVED, "Condition")

"""Whose resource a line of an export is: the hook's own reading, so both paths agree on every reference.

The population groups a resource under patient P exactly when the hook, with P in context,
would keep it (:class:`~service.fhir.integrity.PatientScope`); when the population finds no
patient, the hook keeps it for no one and gives the same reason. Checked over the shapes a
reference takes: relative (with or without a version), absolute under the export's server
or another one, urn:uuid, contained, another patient, a Group or other non-patient, an
identifier or display only, none at all, and the ``subject``/``patient`` elements alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.cli import main
from service.cli.exitcodes import OK
from service.clinical.recordparts import Exclusion
from service.fhir.integrity import PatientReferences, PatientScope
from service.population.export import LineProblem, PatientLine, SkippedLine, classify_line
from tests.references import ME, SERVER, references
from tests.service.clinical.factories import (
    AT,
    NSCLC,
    SNOMED,
    URINARY_RETENTION,
    condition,
    day_ago,
    observation,
    patient,
)

ids = st.from_regex(r"\A[A-Za-z0-9\-.]{1,64}\Z")

#: the population's reason for each of the hook's exclusions
REASON = {
    LineProblem.NO_PATIENT: Exclusion.NO_PATIENT,
    LineProblem.UNRESOLVED: Exclusion.UNRESOLVED,
    LineProblem.NOT_A_PATIENT: Exclusion.ANOTHER_PATIENT,
}


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Condition", "Observation", "ServiceRequest", "Procedure", "ImagingStudy"]))
    resource: dict[str, Any] = {"resourceType": kind, "id": "r"}
    for element in draw(st.sampled_from([(), ("subject",), ("patient",), ("subject", "patient")])):
        resource[element] = draw(references)
    return resource


@given(resource=resources(), server=st.sampled_from([SERVER, SERVER + "/", None]), context=st.sampled_from([ME, "p2"]))
def test_the_population_groups_a_resource_where_the_hook_keeps_it(
    resource: dict[str, Any], server: str | None, context: str
) -> None:
    line = classify_line(orjson.dumps(resource), references=PatientReferences(server))
    hook = PatientScope(context, server).exclusion(resource)
    if isinstance(line, PatientLine):
        assert (hook is None) == (line.patient_id == context)
        if hook is not None:
            assert hook is Exclusion.ANOTHER_PATIENT
    else:
        assert isinstance(line, SkippedLine)
        assert hook is REASON[line.problem]


@given(patient=ids, server=st.sampled_from([SERVER, None]))
def test_a_patient_is_its_own_on_both_paths(patient: str, server: str | None) -> None:
    resource = {"resourceType": "Patient", "id": patient}
    line = classify_line(orjson.dumps(resource), references=PatientReferences(server))
    assert isinstance(line, PatientLine) and line.patient_id == patient
    assert PatientScope(patient, server).exclusion(resource) is None
    assert PatientScope(patient + "x", server).exclusion(resource) is Exclusion.ANOTHER_PATIENT


@given(patient=ids, history=st.sampled_from(["", "/_history/1"]), element=st.sampled_from(["subject", "patient"]))
def test_every_patient_reference_form_names_its_patient(patient: str, history: str, element: str) -> None:
    for text in (f"Patient/{patient}{history}", f"{SERVER}/Patient/{patient}{history}"):
        line = classify_line(
            orjson.dumps({"resourceType": "Observation", element: {"reference": text}}),
            references=PatientReferences(SERVER),
        )
        assert isinstance(line, PatientLine) and line.patient_id == patient, text


def write_focus_export(export: Path, focus_server: str) -> None:
    """An export from SERVER: lung cancer and a neurological sign whose focus is the patient at ``focus_server``."""
    export.mkdir()
    (export / "manifest.json").write_bytes(orjson.dumps({"request": f"{SERVER}/Patient/$export", "output": []}))
    focus = [{"reference": f"{focus_server}/Patient/{ME}"}]
    sign = observation(URINARY_RETENTION, SNOMED, effective=day_ago(1), valueBoolean=True, focus=focus)
    lines = [patient(patient_id=ME), condition(NSCLC), sign]
    (export / "Everything.ndjson").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def worklist_rules(export: Path, out: Path, *options: str) -> list[str]:
    """The rule of each worklist row of ``population`` over ``export`` at AT."""
    assert main(["population", str(export), "--at", AT.isoformat(), "--out", str(out), *options]) == OK
    return [orjson.loads(line)["rule"] for line in (out / "worklist.ndjson").read_bytes().splitlines()]


@pytest.mark.parametrize(("focus_server", "rules"), [(SERVER, ["R1"]), ("https://other.example.org/fhir", [])])
def test_a_findings_focus_is_read_by_the_exports_server_as_a_subject_is(
    tmp_path: Path, focus_server: str, rules: list[str]
) -> None:
    # The patient's sign only when its focus is on the server the export came from.
    write_focus_export(tmp_path / "export", focus_server)
    assert worklist_rules(tmp_path / "export", tmp_path / "out") == rules

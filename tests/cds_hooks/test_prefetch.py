"""Prefetch tokens, the four states of a prefetch key, and the spec's template subset."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from cds_hooks.contexts import PREFETCH_TOKEN_FIELDS
from cds_hooks.prefetch import (
    PrefetchState,
    PrefetchTemplateError,
    check_template_subset,
    check_template_tokens,
    classify_prefetch,
    render_template,
)

SpecExample = Callable[[str], Any]

CONTEXT = {"userId": "PractitionerRole/role-7", "patientId": "p-42", "encounterId": "e-9"}

# -- token rendering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("Patient/{{context.patientId}}", "Patient/p-42"),
        ("Encounter/{{context.encounterId}}", "Encounter/e-9"),
        (
            "Condition?patient={{context.patientId}}&encounter={{context.encounterId}}",
            "Condition?patient=p-42&encounter=e-9",
        ),
        ("PractitionerRole?_id={{userPractitionerRoleId}}", "PractitionerRole?_id=role-7"),
        ("{{context.userId}}", "PractitionerRole/role-7"),
        ("Patient/{{ context.patientId }}", "Patient/p-42"),
        ("Observation?patient={{context.patientId}}&_count=10", "Observation?patient=p-42&_count=10"),
    ],
)
def test_tokens_are_replaced_from_the_context(template: str, rendered: str) -> None:
    assert render_template(template, CONTEXT) == rendered


@pytest.mark.parametrize(
    ("token", "user_id", "identifier"),
    [
        ("userPractitionerId", "Practitioner/pr-1", "pr-1"),
        ("userPractitionerRoleId", "PractitionerRole/role-1", "role-1"),
        ("userPatientId", "Patient/pat-1", "pat-1"),
        ("userRelatedPersonId", "RelatedPerson/rp-1", "rp-1"),
    ],
)
def test_user_tokens_take_the_id_from_user_id(token: str, user_id: str, identifier: str) -> None:
    assert render_template(f"X?_id={{{{{token}}}}}", {"userId": user_id}) == f"X?_id={identifier}"


def test_a_user_token_of_another_resource_type_is_rejected() -> None:
    with pytest.raises(PrefetchTemplateError, match=r"needs context.userId of the form Practitioner/<id>"):
        render_template("Practitioner/{{userPractitionerId}}", {"userId": "PractitionerRole/role-1"})


def test_a_user_token_without_user_id_is_rejected() -> None:
    with pytest.raises(PrefetchTemplateError, match=re.escape("needs context.userId")):
        render_template("Patient/{{userPatientId}}", {"patientId": "p"})


def test_primitive_numbers_and_booleans_render_as_json_writes_them() -> None:
    context = {"count": 3, "flag": True, "off": False}
    assert (
        render_template("X?a={{context.count}}&b={{context.flag}}&c={{context.off}}", context) == "X?a=3&b=true&c=false"
    )


def test_nested_fields_are_not_tokens() -> None:
    # The spec's own counter-example: {{context.medication.id}}.
    with pytest.raises(PrefetchTemplateError, match="is not a root-level context field"):
        render_template("Medication/{{context.medication.id}}", {"medication": {"id": "m1"}})


def test_a_missing_context_field_is_rejected() -> None:
    with pytest.raises(PrefetchTemplateError, match=r"context.encounterId is not available"):
        render_template("Encounter/{{context.encounterId}}", {"patientId": "p"})


def test_a_null_context_field_is_rejected() -> None:
    with pytest.raises(PrefetchTemplateError, match=r"context.encounterId is not available"):
        render_template("Encounter/{{context.encounterId}}", {"encounterId": None})


@pytest.mark.parametrize("value", [{"resourceType": "Bundle"}, ["ServiceRequest/1"]])
def test_a_non_primitive_context_field_is_rejected(value: Any) -> None:
    with pytest.raises(PrefetchTemplateError, match=r"context.draftOrders is not a primitive value"):
        render_template("X?id={{context.draftOrders}}", {"draftOrders": value})


@pytest.mark.parametrize("token", ["patientId", "Patient.id", "today()", "context."])
def test_unknown_tokens_are_rejected(token: str) -> None:
    with pytest.raises(PrefetchTemplateError):
        render_template(f"Patient/{{{{{token}}}}}", CONTEXT)


def test_a_template_without_tokens_is_returned_unchanged() -> None:
    assert render_template("Observation?code=http://loinc.org|4548-4", {}) == "Observation?code=http://loinc.org|4548-4"


# -- classification ----------------------------------------------------------------------

BUNDLE = {"resourceType": "Bundle", "type": "searchset", "entry": []}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


def test_each_declared_key_gets_one_of_the_four_states() -> None:
    sent = {"patient": {"resourceType": "Patient", "id": "p"}, "labs": BUNDLE, "findings": None, "orders": OUTCOME}
    states = classify_prefetch(["patient", "labs", "findings", "orders", "conditions"], sent)
    assert states == {
        "patient": PrefetchState.PRESENT,
        "labs": PrefetchState.PRESENT,  # an empty Bundle is data: "no results"
        "findings": PrefetchState.NULL,
        "orders": PrefetchState.OPERATION_OUTCOME,
        "conditions": PrefetchState.ABSENT,
    }


def test_keys_the_service_did_not_declare_are_ignored() -> None:
    assert classify_prefetch(["patient"], {"patient": None, "other": BUNDLE}) == {"patient": PrefetchState.NULL}


@pytest.mark.parametrize("prefetch", [None, {}])
def test_no_prefetch_means_every_key_is_absent(prefetch: dict[str, Any] | None) -> None:
    assert classify_prefetch(["patient", "conditions"], prefetch) == {
        "patient": PrefetchState.ABSENT,
        "conditions": PrefetchState.ABSENT,
    }


# -- the RECOMMENDED template subset -----------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.patientId}}",
        "Encounter/{{context.encounterId}}",
        "{{context.userId}}",
        "Condition?patient={{context.patientId}}",
        "Observation?patient={{context.patientId}}&code=http://loinc.org|4548-4,http://loinc.org|17861-6",
        "Observation?patient={{context.patientId}}&code:in=http://example.org/ValueSet/labs",
        "Observation?patient={{context.patientId}}&date=ge2026-01-01&_sort=-date&_count=100",
        "Observation?patient={{context.patientId}}&date=lt2026-06-01T10:00:00Z",
        "ServiceRequest?patient={{context.patientId}}&authored=gt2026-01-01&_sort=-authored",
        "ImagingStudy?patient={{context.patientId}}&started=le2026-06-01",
        "PractitionerRole?_id={{userPractitionerRoleId}}",
        "Observation?patient={{context.patientId}}&_lastUpdated=ge2026-01-01",
    ],
)
def test_templates_inside_the_subset_pass(template: str) -> None:
    check_template_subset(template)


def test_the_spec_example_templates_inside_the_subset_pass(spec_example: SpecExample) -> None:
    templates = spec_example("prefetch-templates")["prefetch"]
    for key in ("patient", "diabetes-type2", "user"):
        check_template_subset(templates[key])
    check_template_subset(spec_example("prefetch-user-templates")[0]["prefetch"]["user"])


def test_the_spec_example_templates_outside_the_subset_fail(spec_example: SpecExample) -> None:
    # sort:desc=date is pre-R4 syntax; _include is not in the subset either.
    with pytest.raises(PrefetchTemplateError, match=r"modifier :desc"):
        check_template_subset(spec_example("prefetch-templates")["prefetch"]["hemoglobin-a1c"])
    with pytest.raises(PrefetchTemplateError, match=r"'_include'"):
        check_template_subset(spec_example("prefetch-user-templates")[1]["prefetch"]["user"])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Observation?subject.name=Smith", "chained parameter 'subject.name'"),
        ("Observation?patient.identifier=123", "chained parameter"),
        ("Observation?subject:Patient.name=Smith", "modifier :Patient.name"),
        ("Condition?patient={{context.patientId}}&_include=Condition:subject", "search control '_include'"),
        ("Condition?patient={{context.patientId}}&_revinclude=Provenance:target", "search control '_revinclude'"),
        ("Patient?_has:Condition:patient:code=1234", "search control '_has:Condition:patient:code'"),
        ("Condition?patient={{context.patientId}}&_summary=count", "search control '_summary'"),
        ("Condition?patient={{context.patientId}}&code:below=http://snomed.info/sct|363358000", "modifier :below"),
        ("Condition?patient={{context.patientId}}&code:not=1234", "modifier :not"),
        ("Observation?patient={{context.patientId}}&code:text=calcium", "modifier :text"),
        ("Observation?patient={{context.patientId}}&date=2026-01-01", "needs an eq|lt|gt|ge|le prefix"),
        ("Observation?patient={{context.patientId}}&date=ne2026-01-01", "needs an eq|lt|gt|ge|le prefix"),
        ("Observation?patient={{context.patientId}}&date=sa2026-01-01", "needs an eq|lt|gt|ge|le prefix"),
        ("Observation?patient={{context.patientId}}&date={{context.since}}", "needs an eq|lt|gt|ge|le prefix"),
        ("Observation?patient={{context.patientId}}&_lastUpdated=2026", "needs an eq|lt|gt|ge|le prefix"),
        ("Patient", "must be an instance read"),
        ("Patient/{{context.patientId}}/_history/1", "must be an instance read"),
        ("Patient/{{context.patientId}}/Condition?code=1", "must be type-level"),
        ("Observation/_search?patient=1", "must be type-level"),
        ("observation?patient=1", "must start with a resource type"),
        ("?patient=1", "must start with a resource type"),
        ("{{context.patientId}}", "must start with a resource type"),
    ],
)
def test_templates_outside_the_subset_fail(template: str, message: str) -> None:
    with pytest.raises(PrefetchTemplateError, match=re.escape(message)):
        check_template_subset(template)


def test_the_date_parameters_checked_are_configurable() -> None:
    check_template_subset("Procedure?patient=1&performed=2026")
    with pytest.raises(PrefetchTemplateError, match="performed"):
        check_template_subset("Procedure?patient=1&performed=2026", date_params=("performed",))


@pytest.mark.parametrize("hook", sorted(PREFETCH_TOKEN_FIELDS))
def test_each_hook_admits_only_its_prefetch_tokens(hook: str) -> None:
    fields = PREFETCH_TOKEN_FIELDS[hook]
    for template in (
        "Patient/{{context.patientId}}",
        "Encounter/{{context.encounterId}}",
        "PractitionerRole?_id={{userPractitionerRoleId}}",
        "{{context.userId}}",
    ):
        check_template_tokens(template, fields)
    # The order hooks' draft orders and selections are not primitive: never a prefetch token.
    for template in (
        "ServiceRequest?_id={{context.draftOrders}}",
        "X?_id={{context.selections}}",
        "Patient/{{Patient.id}}",
    ):
        with pytest.raises(PrefetchTemplateError, match="not a prefetch token of this hook"):
            check_template_tokens(template, fields)


def test_rendered_values_are_url_encoded() -> None:
    # Context values are checked where they are parsed; here, whatever arrives stays one value.
    context = {"patientId": "p1&_include=*&x=", "userId": "Practitioner/u 1", "code": "a/b?c#d"}
    assert render_template("Condition?patient={{context.patientId}}", context) == (
        "Condition?patient=p1%26_include%3D%2A%26x%3D"
    )
    assert render_template("Observation?code={{context.code}}", context) == "Observation?code=a%2Fb%3Fc%23d"
    assert render_template("{{context.userId}}", context) == "Practitioner/u%201"


@pytest.mark.parametrize(
    "user_id", ["Practitioner/1&_include=*", "Practitioner/", "Practitioner/a/b", "Practitioner/é"]
)
def test_ids_from_user_id_must_be_fhir_ids(user_id: str) -> None:
    with pytest.raises(PrefetchTemplateError, match=r"needs context\.userId"):
        render_template("PractitionerRole?_id={{userPractitionerId}}", {"userId": user_id})

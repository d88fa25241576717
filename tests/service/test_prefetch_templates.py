"""The service's prefetch templates: the keys of DESIGN.md, inside the spec's subset, codes from the value sets."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs

import pytest

from cds_hooks.prefetch import check_template_subset, render_template
from service.clinical.recordparts import FINDING_VALUESETS, IMAGING_VALUESETS, LAB_VALUESETS, parts_holding
from service.clinical.valuesets import ValueSetLibrary
from service.prefetch import PREFETCH_KEYS, RECORD_PARTS, REQUIRED_KEYS, build_prefetch_templates
from service.settings import DEFAULT_PROFILES_DIR

CODED_KEYS = {
    "labs": LAB_VALUESETS,
    "findings": FINDING_VALUESETS,
    "imagingOrders": IMAGING_VALUESETS,
    "imagingReports": IMAGING_VALUESETS,
    "imagingProcedures": IMAGING_VALUESETS,
}


def _two_codes_each(valueset_id: str) -> Iterable[tuple[str, str]]:
    # shared codes across value sets must appear once in a query
    return [("http://example.org/cs", f"{valueset_id}-a"), ("http://example.org/cs", "shared")]


@pytest.fixture(scope="module")
def library() -> ValueSetLibrary:
    return ValueSetLibrary.load(DEFAULT_PROFILES_DIR / "valuesets")


@pytest.fixture(scope="module")
def templates(library: ValueSetLibrary) -> dict[str, str]:
    # the same lookup create_app uses
    return build_prefetch_templates(library.codes_of)


def _codes(template: str) -> list[str]:
    [codes] = parse_qs(template.partition("?")[2])["code"]
    return codes.split(",")


def test_keys_are_those_of_the_design(templates: dict[str, str]) -> None:
    # The one hand-written copy of the keys: DESIGN.md's list, which PREFETCH_KEYS must match.
    design = [
        "patient",
        "conditions",
        "labs",
        "findings",
        "imagingOrders",
        "imagingStudies",
        "imagingReports",
        "imagingProcedures",
    ]
    assert list(templates) == design
    assert list(PREFETCH_KEYS) == design
    assert REQUIRED_KEYS == {"patient", "conditions"}
    assert REQUIRED_KEYS <= set(templates)


@pytest.mark.parametrize("key", PREFETCH_KEYS)
def test_every_template_is_inside_the_recommended_subset(templates: dict[str, str], key: str) -> None:
    check_template_subset(templates[key])


@pytest.mark.parametrize("key", PREFETCH_KEYS)
def test_every_template_renders_from_a_patient_view_context(templates: dict[str, str], key: str) -> None:
    rendered = render_template(templates[key], {"userId": "Practitioner/pr-1", "patientId": "s01-patient"})
    assert "{{" not in rendered and "}}" not in rendered
    assert "s01-patient" in rendered


def test_reads_and_searches_target_the_intended_resources(templates: dict[str, str]) -> None:
    assert templates["patient"] == "Patient/{{context.patientId}}"
    # A long record (a few hundred Conditions) fits in one large page: servers page by 20 by default.
    assert templates["conditions"] == "Condition?patient={{context.patientId}}&_count=500"
    resource_types = {key: template.split("?")[0].split("/")[0] for key, template in templates.items()}
    assert resource_types == {
        "patient": "Patient",
        "conditions": "Condition",
        "labs": "Observation",
        "findings": "Observation",
        "imagingOrders": "ServiceRequest",
        "imagingStudies": "ImagingStudy",
        "imagingReports": "DiagnosticReport",
        "imagingProcedures": "Procedure",
    }


def test_searches_ask_for_large_pages_newest_first(templates: dict[str, str]) -> None:
    for key in PREFETCH_KEYS:
        if key == "patient":
            continue
        query = parse_qs(templates[key].partition("?")[2])
        assert query["_count"] == ["500"], key
        if key not in REQUIRED_KEYS:
            assert query["_sort"][0].startswith("-"), key


def test_code_lists_are_the_sorted_union_of_the_value_sets() -> None:
    templates = build_prefetch_templates(_two_codes_each)
    for key, valuesets in CODED_KEYS.items():
        expected = sorted({"http://example.org/cs|shared"} | {f"http://example.org/cs|{vs}-a" for vs in valuesets})
        assert _codes(templates[key]) == expected, key


def test_the_real_value_sets_fill_every_code_list(templates: dict[str, str], library: ValueSetLibrary) -> None:
    for key, valuesets in CODED_KEYS.items():
        codes = set(_codes(templates[key]))
        assert "" not in codes, key
        loaded = [vs for vs in valuesets if vs in library.ids]
        assert loaded, f"{key}: none of its value sets is loaded"
        for valueset_id in loaded:
            members = {f"{system}|{code}" for system, code in library.get(valueset_id).codes}
            assert members <= codes, f"{key} misses codes of {valueset_id}"


def test_every_key_fetches_one_part_of_the_record() -> None:
    # The rules and cards name parts, never keys: a key without its part would be a gap no card mentions.
    assert list(RECORD_PARTS) == list(PREFETCH_KEYS)
    assert len(set(RECORD_PARTS.values())) == len(RECORD_PARTS)


@pytest.mark.parametrize("key", ["labs", "findings"])
def test_an_observation_query_asks_for_what_its_part_holds(key: str) -> None:
    # unknown_reasons finds the gaps that could hide a concept through parts_holding: the query
    # of the key must ask for exactly the value sets whose concepts that part holds.
    part = RECORD_PARTS[key]
    assert all(part in parts_holding(valueset) for valueset in CODED_KEYS[key])
    assert not any(part in parts_holding(valueset) for valueset in IMAGING_VALUESETS)

"""Element-wise validation answers as the R4B model does, on the elements read.

The oracle is ``fhir.resources`` itself: the model validates the resource cut down to
the read and required elements (:meth:`ReadElements.of`). A required element no reader
reads need only be present, so the oracle is given a valid one in its place; and a null
never stands for a required element.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from service.clinical.elements import ElementError, ReadElements, RecurringValues, ValidElements
from service.clinical.fhirimaging import _PROCEDURE, _REPORT, _SERVICE_REQUEST, _STUDY
from service.clinical.resource_reader import _CONDITION, _OBSERVATION
from service.clinical.timing import fix_missing_offsets
from tests.scenarios import draft_orders, load_scenarios, prefetched_resources

ALL_ELEMENTS = (_CONDITION, _OBSERVATION, _SERVICE_REQUEST, _REPORT, _PROCEDURE, _STUDY)
BY_TYPE = {elements.resource_type: elements for elements in ALL_ELEMENTS}
# Every resource of a type the readers validate, from every scenario: real shapes to mutate.
SEEDS = sorted(
    (
        resource
        for scenario in load_scenarios()
        for resource in (*prefetched_resources(scenario), *draft_orders(scenario))
        if isinstance(resource, dict) and resource.get("resourceType") in BY_TYPE
    ),
    key=lambda resource: (str(resource.get("resourceType")), str(resource.get("id"))),
)
#: Complex elements of which the readers read only some parts.
PARTS = {"meta": {"profile"}, "valueQuantity": {"value", "unit", "system", "code"}}
#: A valid Reference for the oracle, where the reader only asks that the element be present.
_PLACEHOLDER = {"reference": "Patient/placeholder"}


def model_answer(elements: ReadElements, resource: dict[str, Any]) -> Any | None:
    """What the whole R4B model makes of the read elements (offset-less times read as UTC), or None."""
    cut = elements.of(resource)
    for element, parts in PARTS.items():
        if isinstance(cut.get(element), dict):
            # Of these, the readers read (and validate) only some parts.
            cut[element] = {key: value for key, value in cut[element].items() if key in parts}
    for name, field in elements.model.model_fields.items():
        alias = field.alias or name
        if field.is_required() and alias in cut and cut[alias] is None:
            # The models let a null stand for a required complex element; FHIR JSON has
            # no nulls and 1..1 means a value, so the reader refuses it.
            return None
        if field.is_required() and name not in elements.declared and alias in cut:
            cut[alias] = _PLACEHOLDER
    try:
        return elements.model.model_validate(cut)
    except ValidationError:
        fixed, changed = fix_missing_offsets(cut)
        if not changed:
            return None
        try:
            return elements.model.model_validate(fixed)
        except ValidationError:
            return None


def element_answer(elements: ReadElements, resource: dict[str, Any], recurring: RecurringValues | None) -> Any | None:
    try:
        return elements.validate(resource, recurring)[0]
    except ElementError:
        return None


def assert_same_answer(elements: ReadElements, resource: dict[str, Any], recurring: RecurringValues | None) -> None:
    expected = model_answer(elements, resource)
    actual = element_answer(elements, resource, recurring)
    assert (actual is None) == (expected is None), (resource, expected, actual)
    if expected is not None:
        for name in elements.declared:
            mine, theirs = getattr(actual, name), getattr(expected, name)
            if isinstance(mine, ValidElements):  # only some parts read (meta.profile): those agree
                parts = PARTS[elements.model.model_fields[name].alias or name]
                assert theirs is not None and all(getattr(theirs, part) == getattr(mine, part) for part in parts)
            elif isinstance(mine, str) and mine != theirs:
                # The model, retried with every offset-less time read as UTC, also
                # rewrote strings that looked like one (abatementString); the reader
                # only repairs the element that failed.
                assert fix_missing_offsets(mine)[0] == theirs, name
            else:
                assert mine == theirs, name


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "x", "2026-05-30T08:00:00", "final"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["coding", "code", "extension", "url"]), children)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    resource = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    elements = BY_TYPE[resource["resourceType"]]
    fields = elements.model.model_fields
    # resourceType stays: the readers choose the elements by it.
    keys = sorted(
        {*elements.kept, "note", "encounter", "bodySite", "subject"}
        & {field.alias or name for name, field in fields.items()}
    )
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*keys, "nonsense", "valueString", "effectivePeriod", "onsetString"]))
        action = draw(st.sampled_from(["drop", "null", "value", "null-in-list", "no-offset"]))
        if action == "drop":
            resource.pop(key, None)
        elif action == "null":
            resource[key] = None
        elif action == "value":
            resource[key] = draw(JSON_VALUES)
        elif action == "null-in-list":
            resource[key] = [*(resource.get(key) if isinstance(resource.get(key), list) else []), None]
        else:
            resource[key] = "2026-05-30T08:15"
    return resource


def test_there_are_seeds_of_every_validated_type() -> None:
    assert {resource["resourceType"] for resource in SEEDS} == set(BY_TYPE)


@pytest.mark.parametrize("use_cache", [False, True])
def test_every_scenario_resource_gets_the_models_answer(use_cache: bool) -> None:
    recurring = RecurringValues() if use_cache else None
    for resource in SEEDS:
        assert_same_answer(BY_TYPE[resource["resourceType"]], resource, recurring)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=mutated(), use_cache=st.booleans())
def test_mutated_resources_get_the_models_answer(resource: dict[str, Any], use_cache: bool) -> None:
    assert_same_answer(BY_TYPE[resource["resourceType"]], resource, RecurringValues() if use_cache else None)


def test_an_element_not_declared_cannot_be_read() -> None:
    valid, _ = _OBSERVATION.validate(
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": 3}
    )
    assert valid.valueInteger == 3 and valid.valueQuantity is None
    with pytest.raises(AttributeError):
        _ = valid.subject


def test_a_wrong_resource_type_is_refused() -> None:
    with pytest.raises(ElementError, match="resourceType"):
        _OBSERVATION.validate({"resourceType": "Condition", "status": "final", "code": {"text": "x"}})


# -- the cache of recurring values ----------------------------------------------------


CONCEPT = {"coding": [{"system": "http://loinc.org", "code": "17861-6", "display": "Calcium"}]}
ADAPTER: TypeAdapter[Any] = TypeAdapter(_OBSERVATION.model.model_fields["code"].annotation)


def test_the_same_concept_is_validated_once() -> None:
    recurring = RecurringValues()
    first = recurring.validate(ADAPTER, CONCEPT)
    assert recurring.validate(ADAPTER, copy.deepcopy(CONCEPT)) is first
    assert len(recurring) == 1
    assert first == ADAPTER.validate_python(CONCEPT)


def test_the_same_json_is_kept_apart_for_each_type() -> None:
    recurring = RecurringValues()
    quantity: TypeAdapter[Any] = TypeAdapter(_OBSERVATION.model.model_fields["valueQuantity"].annotation)
    assert recurring.validate(quantity, {"unit": "mg"}).unit == "mg"
    with pytest.raises(ValidationError):
        recurring.validate(ADAPTER, {"unit": "mg"})  # no element "unit" in a CodeableConcept


def test_concepts_and_quantity_parts_go_through_the_cache_ids_and_times_do_not() -> None:
    recurring = RecurringValues()
    lab = {
        "resourceType": "Observation",
        "id": "a",
        "status": "final",
        "code": CONCEPT,
        "effectiveDateTime": "2026-05-30T08:00:00Z",
        "valueQuantity": {"value": 2.6, "unit": "mmol/L"},
    }
    valid, _ = _OBSERVATION.validate(lab, recurring)
    assert len(recurring) == 3  # the code; the quantity's value and unit
    assert (valid.valueQuantity.value, valid.valueQuantity.unit, valid.valueQuantity.code) == (
        Decimal("2.6"),
        "mmol/L",
        None,
    )


def test_an_invalid_concept_raises_every_time_and_is_not_kept() -> None:
    recurring = RecurringValues()
    for _ in range(2):
        with pytest.raises(ValidationError):
            recurring.validate(ADAPTER, {"coding": "not a list"})
    assert len(recurring) == 0


def test_the_cache_keeps_at_most_its_capacity_oldest_out_first() -> None:
    recurring = RecurringValues(capacity=2)
    values = [{"text": text} for text in ("a", "b", "c")]
    kept = [recurring.validate(ADAPTER, value) for value in values]
    assert len(recurring) == 2
    assert recurring.validate(ADAPTER, values[2]) is kept[2]
    assert recurring.validate(ADAPTER, values[0]) is not kept[0]  # evicted: validated afresh


def test_a_value_that_is_not_json_is_validated_without_the_cache() -> None:
    recurring = RecurringValues()
    with pytest.raises(ValidationError):
        recurring.validate(ADAPTER, {"text": 2**70})
    assert len(recurring) == 0


def test_a_copy_holds_what_the_cache_held_and_then_goes_its_own_way() -> None:
    recurring = RecurringValues()
    first = recurring.validate(ADAPTER, CONCEPT)
    duplicate = recurring.copy()
    assert duplicate.validate(ADAPTER, CONCEPT) is first
    duplicate.validate(ADAPTER, {"text": "new"})
    assert (len(recurring), len(duplicate)) == (1, 2)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RecurringValues(capacity=0)

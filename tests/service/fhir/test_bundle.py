"""The lenient Bundle reader used by the FHIR client, draft orders and the scenarios."""

from __future__ import annotations

from typing import Any

import pytest

from service.fhir.bundle import bundle_resources

CONDITION = {"resourceType": "Condition", "id": "c-1", "subject": {"reference": "Patient/p-1"}}


@pytest.mark.parametrize("entry", [True, 1, 2.5, "entries", {"resource": CONDITION}, None])
def test_an_entry_that_is_not_a_list_holds_no_resources(entry: Any) -> None:
    # A server or EHR that sends `"entry": true` must not crash the reader (a 500 hides every card).
    assert bundle_resources({"resourceType": "Bundle", "type": "searchset", "entry": entry}) == []


def test_entries_without_a_resource_object_and_outcomes_are_skipped() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    bundle = {
        "resourceType": "Bundle",
        "entry": [1, {"fullUrl": "x"}, {"resource": "Condition"}, {"resource": outcome}, {"resource": CONDITION}],
    }
    assert bundle_resources(bundle) == [CONDITION]


@pytest.mark.parametrize("value", [None, [CONDITION], "Bundle", 3])
def test_a_value_that_is_not_an_object_holds_no_resources(value: Any) -> None:
    assert bundle_resources(value) == []


def test_a_single_resource_is_its_own_list() -> None:
    assert bundle_resources(CONDITION) == [CONDITION]

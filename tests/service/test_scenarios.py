"""The scenario files of ``profiles/examples``: their structure, and the service's answer to each.

The structural tests check the files alone (format, FHIR R4 validity, unique ids), so they pass
whatever state the engine is in. The golden test posts every file to a real app whose clock is pinned
to the scenario's reference time and compares the cards with the expectation written in the file,
which was derived from the decision table in docs/clinical/decision-table.md#rules, not from the engine.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from cds_hooks.models import CDSResponse
from service.app import create_app
from service.prefetch import PREFETCH_KEYS, REQUIRED_KEYS
from service.scenarios import Scenario
from service.settings import DEFAULT_PROFILES_DIR, Settings
from service.store.settings import StoreSettings
from tests.inprocess import serve_app
from tests.scenarios import (
    RULE_TOPIC_SYSTEM,
    card_multiset,
    draft_orders,
    expected_multiset,
    load_scenario,
    load_scenarios,
    prefetched_resources,
    scenario_number,
    scenario_paths,
)
from tests.servicepaths import service_path

SCENARIO_FILES = scenario_paths()
FILE_IDS = [path.stem for path in SCENARIO_FILES]
by_file = pytest.mark.parametrize("path", SCENARIO_FILES, ids=FILE_IDS)

HOOKS = frozenset({"patient-view", "encounter-start", "order-select", "order-sign"})
FHIR_SERVER = "https://ehr.example.org/fhir"
#: FHIR ``id``: 1-64 of [A-Za-z0-9-.]
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: Every rule of docs/clinical/decision-table.md#rules that verified codes can reach (R3 cannot: README.md).
REACHABLE_RULES = frozenset({"R1", "R2", "R2b", "R4a", "R4b", "R4c", "R5", "R6a", "R6b", "R6c", "R7"})
#: Valid FHIR that the sandbox server (SEKMET 0.1.1) answers with a 500: its date arithmetic
#: overflows on 9999-12-31 and on instants beyond the UTC range at ±14:00. Marked ``sandbox: false``.
_VALID_BUT_REFUSED_BY_THE_SANDBOX = frozenset(
    {"137-r1-sentinel-dates-in-cancer-condition", "147-r1-sentinel-instants-at-extreme-offsets"}
)
#: What a card detail says when a prefetch key could not be read.
_GAP_WORDS = {
    "labs": "lab",
    "findings": "finding",
    "imagingOrders": "imaging",
    "imagingStudies": "imaging",
    "imagingReports": "imaging",
    "imagingProcedures": "imaging",
}


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object nested in ``value``, itself included."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def _all_resources(scenario: Scenario) -> list[dict[str, Any]]:
    return [*prefetched_resources(scenario), *draft_orders(scenario)]


def _id_prefix(scenario: Scenario) -> str:
    """``sNN-``: every id of scenario NN starts with it (DESIGN.md)."""
    return f"s{scenario.name.split('-', 1)[0]}-"


def _unloadable_references(scenario: Scenario) -> list[str]:
    """References a strict FHIR server refuses to load: urn:uuid (outside its Bundle), another server's URL."""
    return [
        reference
        for node in _walk(scenario.prefetch)
        if isinstance(reference := node.get("reference"), str) and (reference.startswith("urn:") or "://" in reference)
    ]


def _fhir_errors(scenario: Scenario) -> list[str]:
    """Validation errors of every resource the scenario would load into a FHIR server."""
    errors = []
    documents: list[tuple[str, Any]] = [(key, scenario.prefetch.get(key)) for key in PREFETCH_KEYS]
    documents.append(("context.draftOrders", scenario.context.get("draftOrders")))
    for where, document in documents:
        if document is None:
            continue
        model = Patient if where == "patient" else Bundle
        try:
            model.model_validate(document)
        except ValidationError as exc:
            errors.append(f"{where}: {exc}")
    return errors


def _coded(resource: dict[str, Any], field: str) -> set[str]:
    concept = resource.get(field) or {}
    return {coding.get("code") for coding in concept.get("coding") or ()}


# -- the collection as a whole -----------------------------------------------------------


def test_there_are_at_least_forty_numbered_scenarios() -> None:
    assert len(SCENARIO_FILES) >= 40
    numbers = [scenario_number(path.name) for path in SCENARIO_FILES]
    assert len(set(numbers)) == len(numbers), "scenario numbers must be unique"
    main = [number for number in numbers if number < 100]
    assert main == list(range(1, len(main) + 1)), "scenario numbers must run 01, 02, ... without gaps"


def test_ids_are_unique_across_all_scenarios() -> None:
    scenarios = load_scenarios()
    # Within one file a resource may appear twice on purpose: two versions of it (143), or an
    # included Patient under two keys of one request (seed loads it once).
    resource_keys = Counter(
        key
        for scenario in scenarios
        for key in {(resource["resourceType"], resource["id"]) for resource in _all_resources(scenario)}
    )
    patients = Counter(scenario.context["patientId"] for scenario in scenarios)
    hook_instances = Counter(scenario.request["hookInstance"] for scenario in scenarios)
    assert [key for key, count in resource_keys.items() if count > 1] == []
    assert [key for key, count in patients.items() if count > 1] == []
    assert [key for key, count in hook_instances.items() if count > 1] == []


def test_expectations_cover_every_reachable_rule_and_hook() -> None:
    scenarios = load_scenarios()
    expected = [card for scenario in scenarios for card in scenario.expected_cards]
    assert {card.rule_id for card in expected} >= REACHABLE_RULES
    assert ("R1", "info") in {(card.rule_id, card.indicator) for card in expected}, "R9 downgrade of R1 untested"
    assert any(not scenario.expected_cards for scenario in scenarios), "no scenario expects silence"
    assert {scenario.request["hook"] for scenario in scenarios} == HOOKS
    assert {scenario.sandbox for scenario in scenarios} == {True, False}


# -- each file -----------------------------------------------------------------------------


@by_file
def test_scenario_is_a_well_formed_request(path: Path) -> None:
    scenario = load_scenario(path)
    request, context, prefetch = scenario.request, scenario.context, scenario.prefetch
    hook = request["hook"]
    assert hook in HOOKS
    assert uuid.UUID(request["hookInstance"]).version == 4
    assert "fhirAuthorization" not in request, "scenarios are prefetch-complete"
    assert request.get("fhirServer", FHIR_SERVER) == FHIR_SERVER
    assert str(context.get("userId", "")).startswith("Practitioner/")
    assert context.get("patientId") == f"{_id_prefix(scenario)}patient"
    if hook == "encounter-start":
        assert context.get("encounterId")
    if hook in ("order-select", "order-sign"):
        drafts = draft_orders(scenario)
        assert context["draftOrders"]["resourceType"] == "Bundle"
        assert drafts
        assert all(order["status"] == "draft" for order in drafts)
    if hook == "order-select":
        draft_references = {f"{order['resourceType']}/{order['id']}" for order in draft_orders(scenario)}
        assert context.get("selections")
        assert set(context["selections"]) <= draft_references

    assert set(prefetch) <= set(PREFETCH_KEYS)
    for key in REQUIRED_KEYS:
        assert prefetch.get(key) is not None, f"required prefetch key {key!r} must be sent"
    if not scenario.sandbox and _fhir_errors(scenario):
        return  # malformed on purpose: the shape below is what it breaks
    assert prefetch["patient"]["resourceType"] == "Patient"
    if scenario.expected_status == 200:
        assert prefetch["patient"]["id"] == context["patientId"]
    for key in PREFETCH_KEYS[1:]:
        bundle = prefetch.get(key)
        if bundle is None:
            continue
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        assert bundle.get("total") == len(bundle.get("entry") or ())
    if set(PREFETCH_KEYS) - set(prefetch):
        # the service would have to query the server: no network in tests and no token to send
        assert "fhirServer" not in request


@by_file
def test_scenario_resources_belong_to_its_patient(path: Path) -> None:
    scenario = load_scenario(path)
    prefix = _id_prefix(scenario)
    patient_reference = f"Patient/{scenario.context['patientId']}"
    for resource in _all_resources(scenario):
        assert _FHIR_ID.match(resource["id"]), resource["id"]
        assert resource["id"].startswith(prefix), resource["id"]
        if scenario_number(path.name) >= 100:
            continue  # the patient-integrity scenarios hold other patients' data on purpose
        for field in ("subject", "patient"):
            if field in resource:
                assert resource[field] == {"reference": patient_reference}


@by_file
def test_scenario_codes_are_strings(path: Path) -> None:
    scenario = load_scenario(path)
    for node in _walk(scenario.request["prefetch"]):
        if "system" in node and "code" in node:
            assert isinstance(node["code"], str), f"{node['system']}: code {node['code']!r} must be a string"
            assert node["code"].strip() == node["code"] != ""


@by_file
def test_scenario_validates_as_fhir_unless_malformed_on_purpose(path: Path) -> None:
    scenario = load_scenario(path)
    errors = _fhir_errors(scenario)
    if scenario.sandbox or path.stem in _VALID_BUT_REFUSED_BY_THE_SANDBOX:
        assert errors == []
        assert _unloadable_references(scenario) == []
    else:
        # A request that cannot be screened as written (412) is not a patient to load either.
        assert errors or _unloadable_references(scenario) or scenario.expected_status != 200, (
            "sandbox: false promises data a strict FHIR server refuses, but every resource is valid"
        )


@by_file
def test_scenario_conditions_keep_fhir_invariants(path: Path) -> None:
    # fhir.resources checks structure and datatypes, not the FHIRPath invariants of Condition
    scenario = load_scenario(path)
    for resource in _all_resources(scenario):
        if resource["resourceType"] != "Condition":
            continue
        verification = _coded(resource, "verificationStatus")
        clinical = _coded(resource, "clinicalStatus")
        if "entered-in-error" in verification:
            assert not clinical, f"{resource['id']}: con-5, no clinicalStatus when entered-in-error"
        elif any(
            coding.get("code") == "problem-list-item"
            for category in resource.get("category") or ()
            for coding in category.get("coding") or ()
        ):
            assert clinical, f"{resource['id']}: con-3, a problem-list item needs a clinicalStatus"
        if "abatementDateTime" in resource:
            assert clinical <= {"inactive", "resolved", "remission"}, f"{resource['id']}: con-4"


# -- the service's answer -----------------------------------------------------------------


def _action_types(cards: list[dict[str, Any]], rule_id: str) -> tuple[tuple[str, ...], ...]:
    (card,) = (card for card in cards if card["source"]["topic"]["code"] == rule_id)
    return tuple(
        tuple(action["type"] for action in suggestion.get("actions") or ())
        for suggestion in card.get("suggestions", ())
    )


def _assert_actions_stay_in_scenario(scenario: Scenario, cards: list[dict[str, Any]]) -> None:
    """Deletes and updates name only the drafts being decided; new orders cite only this patient's data."""
    decided = {f"{order['resourceType']}/{order['id']}" for order in draft_orders(scenario)}
    if scenario.request["hook"] == "order-select":
        decided &= set(scenario.context["selections"])
    prefix = _id_prefix(scenario)
    for card in cards:
        for suggestion in card.get("suggestions", ()):
            for action in suggestion["actions"]:
                resource = action.get("resource") or {}
                if action["type"] == "delete":
                    assert action["resourceId"] in decided
                elif action["type"] == "update":
                    assert f"{resource['resourceType']}/{resource['id']}" in decided
                for reason in resource.get("reasonReference", ()):
                    assert reason["reference"].split("/", 1)[1].startswith(prefix), reason
                if "subject" in resource:
                    assert resource["subject"] == {"reference": f"Patient/{scenario.context['patientId']}"}


@pytest.mark.anyio
@pytest.mark.usefixtures("clean_mscc_environment")  # the expectations assume the default clinical policy
@by_file
async def test_service_returns_the_expected_cards(path: Path, store_settings: StoreSettings) -> None:
    scenario = load_scenario(path)
    settings = Settings(profiles_dir=DEFAULT_PROFILES_DIR, store=store_settings)
    app = create_app(settings, clock=lambda: scenario.reference_time)
    async with serve_app(app) as client:
        response = await client.post(service_path(scenario.request["hook"]), json=scenario.request)

    assert response.status_code == scenario.expected_status, response.text
    if scenario.expected_status != 200:
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "prefetch key" in " ".join(issue.get("diagnostics", "") for issue in outcome["issue"])
        return
    # The engine builds cards without validating them: here each one meets every rule of the models.
    assert CDSResponse.model_validate(response.json()).to_json() == response.json()
    cards = response.json()["cards"]
    for card in cards:
        assert isinstance(card.get("uuid"), str) and card["uuid"]
        assert 0 < len(card["summary"]) < 140
        assert card["source"]["topic"]["system"] == RULE_TOPIC_SYSTEM
        assert card["source"]["topic"]["code"]
    expected = expected_multiset(scenario)
    actual = card_multiset(cards)
    assert actual == expected, (
        f"{scenario.title}\nexpected {sorted(expected.elements())}\ngot {sorted(actual.elements())}"
    )
    for card in scenario.expected_cards:
        if card.suggestions is not None:
            assert _action_types(cards, card.rule_id) == card.suggestions, scenario.title
    _assert_actions_stay_in_scenario(scenario, cards)

    omitted = {key for key in PREFETCH_KEYS if key not in scenario.prefetch}
    if omitted and cards:
        details = " ".join(card.get("detail", "") for card in cards).lower()
        assert {_GAP_WORDS[key] for key in omitted if key in _GAP_WORDS} <= {
            word for word in _GAP_WORDS.values() if word in details
        }, "a card must say which data could not be checked"


@pytest.mark.anyio
@pytest.mark.usefixtures("clean_mscc_environment")
@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("136", "preliminary, not yet signed off"),
        ("139", "Incomplete data, screened as far as read: conditions"),
    ],
)
async def test_the_card_says_how_far_it_can_be_trusted(number: str, words: str, store_settings: StoreSettings) -> None:
    """A preliminary finding and a record read only in part are named on the card (docs/clinical/data-quality.md)."""
    path = next(path for path in SCENARIO_FILES if path.name.startswith(f"{number}-"))
    scenario = load_scenario(path)
    app = create_app(
        Settings(profiles_dir=DEFAULT_PROFILES_DIR, store=store_settings), clock=lambda: scenario.reference_time
    )
    async with serve_app(app) as client:
        response = await client.post(service_path(scenario.request["hook"]), json=scenario.request)
    assert response.status_code == 200, response.text
    assert [words in card.get("detail", "") for card in response.json()["cards"]] == [True]

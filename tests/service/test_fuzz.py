"""Fuzzing: arbitrary JSON never breaks the wire models, and the running app never answers 5xx.

Two layers, both bounded to a few seconds so they fit CI:

* hypothesis feeds arbitrary (and model-shaped) JSON to the cds_hooks models: the only
  exception allowed is pydantic's ValidationError, and whatever validates re-serialises
  and validates again;
* schemathesis generates valid and invalid calls from the app's own OpenAPI document,
  with the request bodies declared from the wire models, and sends them to the app:
  no 5xx, and every error is an OperationOutcome.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis import GenerationMode

from cds_hooks.contexts import parse_context
from cds_hooks.errors import MalformedRequest
from cds_hooks.models import (
    Action,
    Card,
    CDSRequest,
    CDSResponse,
    DiscoveryResponse,
    FeedbackItem,
    FeedbackRequest,
    Link,
    ServiceDefinition,
    Suggestion,
    WireModel,
)
from service.app import create_app
from service.screening import SERVICE_IDS
from service.settings import Settings
from service.store.settings import StoreSettings
from tests.scenarios import scenario_paths

# -- arbitrary JSON against the models --------------------------------------------------

SPEC_EXAMPLES = Path(__file__).resolve().parents[1] / "cds_hooks" / "spec_examples"
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "patient-view", "order-sign", "accepted", "overridden", "create", "critical", "smart"])
    | st.sampled_from(["https://ehr.example.org/fhir", "2026-06-01T10:00:00Z", "2026-06-01", "Bearer", "at-most-one"])
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
#: Where each model's objects sit inside the spec's examples.
NESTED_UNDER: dict[str, type[WireModel]] = {
    "cards": Card,
    "suggestions": Suggestion,
    "actions": Action,
    "systemActions": Action,
    "links": Link,
    "services": ServiceDefinition,
    "feedback": FeedbackItem,
}


def _seeds() -> dict[type[WireModel], list[Any]]:
    """Valid objects of every model: the specification's own examples and a scenario request."""
    seeds: dict[type[WireModel], list[Any]] = {model: [] for model in MODELS}
    documents = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(SPEC_EXAMPLES.glob("*.json"))]
    documents.extend(json.loads(path.read_text(encoding="utf-8")) for path in scenario_paths()[:1])
    for document in documents:
        top_level: tuple[type[WireModel], ...] = (CDSRequest, CDSResponse, DiscoveryResponse, FeedbackRequest, Action)
        for top in document if isinstance(document, list) else [document]:
            for whole in top_level:
                if _valid(whole, top):
                    seeds[whole].append(top)
        stack = [document]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    model = NESTED_UNDER.get(key)
                    if model is not None and isinstance(value, list):
                        seeds[model].extend(item for item in value if _valid(model, item))
                    stack.append(value)
            elif isinstance(node, list):
                stack.extend(node)
    # The spec's examples hold no suggestion: one of ours, alone and on a card.
    suggestion = {
        "label": "Order a whole-spine MRI within 24 hours",
        "uuid": "9f3c1e52-4c4e-4a53-9d9b-6f2a7c1d0e11",
        "isRecommended": True,
        "actions": seeds[Action][:1],
    }
    seeds[Suggestion].append(suggestion)
    seeds[Card].extend(
        {**card, "suggestions": [suggestion], "selectionBehavior": "at-most-one"} for card in list(seeds[Card])
    )
    return seeds


def _valid(model: type[WireModel], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _positions(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside ``node``."""
    found: list[tuple[Any, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        children = (
            current.items() if isinstance(current, dict) else enumerate(current) if isinstance(current, list) else ()
        )
        for key, child in children:
            found.append((current, key))
            stack.append(child)
    return found


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A valid seed with up to three random edits: a key dropped, a value replaced or emptied, a key added."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        positions = _positions(document)
        if not positions:
            break
        container, key = draw(st.sampled_from(positions))
        edit = draw(st.sampled_from(["drop", "replace", "empty", "add"]))
        if edit == "drop":
            del container[key]
        elif edit == "replace":
            container[key] = draw(JSON)
        elif edit == "empty":
            container[key] = draw(st.sampled_from([None, "", [], {}]))
        elif isinstance(container, dict):
            container[draw(st.text(max_size=8))] = draw(JSON)
        else:
            container.append(draw(JSON))
    return document


MODELS: list[type[WireModel]] = [
    CDSRequest,
    CDSResponse,
    DiscoveryResponse,
    FeedbackRequest,
    FeedbackItem,
    ServiceDefinition,
    Card,
    Suggestion,
    Action,
    Link,
]
SEEDS = _seeds()
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_model_has_valid_seeds() -> None:
    assert all(SEEDS[model] for model in MODELS), {model.__name__: len(SEEDS[model]) for model in MODELS}


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_arbitrary_json_only_ever_fails_validation(model: type[WireModel]) -> None:
    outcomes = {"valid": 0, "invalid": 0}

    @FUZZ
    @given(payload=st.one_of(mutated(SEEDS[model]), JSON))
    def check(payload: Any) -> None:
        try:
            parsed = model.model_validate(payload)
        except ValidationError:
            outcomes["invalid"] += 1
            return
        outcomes["valid"] += 1
        # What validates must serialise to spec JSON that validates again (no nulls, no empties).
        again = model.model_validate(parsed.to_json())
        assert again.to_json() == parsed.to_json()

    check()
    assert outcomes["valid"] and outcomes["invalid"], outcomes


@FUZZ
@given(
    hook=st.sampled_from(["patient-view", "encounter-start", "order-select", "order-sign", "unknown-hook"]),
    context=st.dictionaries(
        st.sampled_from(["userId", "patientId", "encounterId", "draftOrders", "selections", "other"]),
        JSON,
        max_size=6,
    ),
)
def test_any_context_is_parsed_or_malformed(hook: str, context: dict[str, Any]) -> None:
    try:
        parse_context(hook, context)
    except MalformedRequest:
        pass


# -- schemathesis against the app -------------------------------------------------------


def openapi_with_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI, plus the request bodies the router reads by hand (from the wire models)."""
    enriched = copy.deepcopy(document)
    schemas = enriched.setdefault("components", {}).setdefault("schemas", {})
    bodies: dict[tuple[str, str], type[WireModel]] = {
        ("/cds-services/{service_id}", "post"): CDSRequest,
        ("/cds-services/{service_id}/feedback", "post"): FeedbackRequest,
    }
    for (path, method), model in bodies.items():
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(model_schema.pop("$defs", {}))
        schemas[model.__name__] = model_schema
        operation = enriched["paths"][path][method]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "service_id":
                # Mostly the real id, so that generated bodies get past the 404.
                parameter["schema"] = {"type": "string", "enum": sorted(SERVICE_IDS.values())}
    return enriched


def test_generated_calls_never_get_a_5xx(store_settings: StoreSettings) -> None:
    app = create_app(Settings(store=store_settings))
    schema = schemathesis.openapi.from_dict(openapi_with_bodies(app.openapi()))
    schema.app = app
    strategy = schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE)
    seen: set[int] = set()

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: Any) -> None:
        response = case.call()
        seen.add(response.status_code)
        assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 400:
            body = response.json()
            assert body["resourceType"] == "OperationOutcome", body
            assert "Traceback" not in response.text

    call()
    # The run reached past routing into body validation and the service itself.
    assert 200 in seen and 400 in seen, seen

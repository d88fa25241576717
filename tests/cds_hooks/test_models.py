"""Wire models against the CDS Hooks 2.0 specification's own examples and its JSON rules."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from cds_hooks.models import (
    Action,
    Card,
    CDSRequest,
    CDSResponse,
    Coding,
    DiscoveryResponse,
    FeedbackItem,
    FeedbackRequest,
    FhirAuthorization,
    Link,
    ServiceDefinition,
    Source,
    Suggestion,
    WireModel,
)

SpecExample = Callable[[str], Any]

# -- round trips of the specification's examples -----------------------------------------


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (DiscoveryResponse, "discovery"),
        (DiscoveryResponse, "discovery-extension"),
        (CDSRequest, "request-patient-view"),
        (CDSRequest, "request-extension"),
        (CDSResponse, "response"),
        (CDSResponse, "response-empty"),
        (Action, "action-create"),
        (Action, "action-update"),
        (Action, "action-delete"),
        (FeedbackRequest, "feedback-accepted"),
        (FeedbackRequest, "feedback-overridden"),
        (FeedbackRequest, "feedback-overridden-reason"),
    ],
)
def test_spec_example_round_trips(model: type[WireModel], name: str, spec_example: SpecExample) -> None:
    example = spec_example(name)
    assert model.model_validate(example).to_json() == example


def test_spec_source_example_round_trips(spec_example: SpecExample) -> None:
    example = spec_example("source")["source"]
    assert Source.model_validate(example).to_json() == example


def test_spec_fhir_authorization_example_round_trips(spec_example: SpecExample) -> None:
    example = spec_example("fhir-authorization")["fhirAuthorization"]
    assert FhirAuthorization.model_validate(example).to_json() == example


def test_spec_override_reasons_round_trip_as_codings(spec_example: SpecExample) -> None:
    for reason in spec_example("override-reasons")["overrideReasons"]:
        assert Coding.model_validate(reason).to_json() == reason


def test_urls_are_kept_exactly_as_written(spec_example: SpecExample) -> None:
    # "https://example.com" must not come back as "https://example.com/".
    request = CDSRequest.model_validate(spec_example("request-patient-view"))
    assert request.fhirServer == "http://hooks.smarthealthit.org:9080"
    assert request.fhir_server_base == "http://hooks.smarthealthit.org:9080"
    card = CDSResponse.model_validate(spec_example("response")).cards[0]
    assert card.source.url == "https://example.com"


def test_card_with_suggestions_built_from_spec_actions_round_trips(spec_example: SpecExample) -> None:
    # The 2.0 text has no complete suggestion example: assemble one from its action,
    # source and override-reason examples.
    card = {
        "uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "summary": "Replace the inappropriate order",
        "indicator": "warning",
        "source": spec_example("source")["source"],
        "selectionBehavior": "at-most-one",
        "suggestions": [
            {
                "label": "Replace the order",
                "uuid": "e56e1945-20b3-4393-8503-a1a20fd73152",
                "isRecommended": True,
                "actions": [spec_example("action-delete"), spec_example("action-create")],
            },
            {"label": "Update the order", "actions": [spec_example("action-update")]},
        ],
        "overrideReasons": spec_example("override-reasons")["overrideReasons"],
    }
    response = {"cards": [card], "systemActions": [spec_example("action-update")]}
    assert CDSResponse.model_validate(response).to_json() == response


def test_spec_autolaunchable_example_lacks_the_required_indicator(spec_example: SpecExample) -> None:
    example = spec_example("response-autolaunchable")
    with pytest.raises(ValidationError) as caught:
        CDSResponse.model_validate(example)
    assert [error["loc"] for error in caught.value.errors()] == [("cards", 0, "indicator")]
    assert caught.value.errors()[0]["type"] == "missing"
    fixed = copy.deepcopy(example)
    fixed["cards"][0]["indicator"] = "info"
    assert CDSResponse.model_validate(fixed).to_json() == fixed


def test_spec_system_actions_example_lacks_the_required_description(spec_example: SpecExample) -> None:
    example = spec_example("response-system-actions")
    with pytest.raises(ValidationError) as caught:
        CDSResponse.model_validate(example)
    assert [error["loc"] for error in caught.value.errors()] == [("systemActions", 0, "description")]
    fixed = copy.deepcopy(example)
    fixed["systemActions"][0]["description"] = "Update the MRI order"
    assert CDSResponse.model_validate(fixed).to_json() == fixed


def test_unknown_fields_are_ignored_inbound_and_not_echoed(spec_example: SpecExample) -> None:
    example = spec_example("request-patient-view")
    example["com.vendor.flag"] = True
    parsed = CDSRequest.model_validate(example)
    assert "com.vendor.flag" not in parsed.to_json()


# -- rejections: one per rule, each with a readable message -------------------------------


def _source() -> dict[str, Any]:
    return {"label": "NICE NG234"}


def _card(**fields: Any) -> dict[str, Any]:
    return {"summary": "Check for MSCC", "indicator": "critical", "source": _source(), **fields}


def _suggestion(**fields: Any) -> dict[str, Any]:
    return {"label": "Order MRI", **fields}


def _request(**fields: Any) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        **fields,
    }


def _authorization() -> dict[str, Any]:
    return {
        "access_token": "opaque-token-123",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read",
        "subject": "mscc-cds",
    }


def _feedback(**fields: Any) -> dict[str, Any]:
    return {"card": "4e0a3a1e", "outcome": "overridden", "outcomeTimestamp": "2026-06-01T09:00:00Z", **fields}


def _rejection(model: type[WireModel], payload: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(payload)
    return str(caught.value)


@pytest.mark.parametrize(
    ("model", "payload", "message"),
    [
        pytest.param(Card, _card(summary=None), "summary\n  Input should be a valid string", id="null-required"),
        pytest.param(Coding, {"code": "", "system": "http://loinc.org"}, "at least 1 character", id="empty-string"),
        pytest.param(Source, {"label": ""}, "at least 1 character", id="empty-label"),
        pytest.param(Card, _card(uuid=""), "at least 1 character", id="empty-card-uuid"),
        pytest.param(Card, _card(links=[]), "must be omitted rather than sent empty", id="empty-links"),
        pytest.param(Card, _card(overrideReasons=[]), "must be omitted rather than sent empty", id="empty-reasons"),
        pytest.param(
            Card,
            _card(suggestions=[], selectionBehavior="any"),
            "must be omitted rather than sent empty",
            id="empty-suggestions",
        ),
        pytest.param(Suggestion, _suggestion(actions=[]), "actions must be omitted", id="empty-actions"),
        pytest.param(CDSResponse, {"cards": [], "systemActions": []}, "systemActions must be omitted", id="empty-sys"),
        pytest.param(FeedbackRequest, {"feedback": []}, "at least 1 item", id="empty-feedback"),
        pytest.param(
            FeedbackItem, _feedback(acceptedSuggestions=[]), "acceptedSuggestions must be omitted", id="empty-accepted"
        ),
        pytest.param(
            ServiceDefinition,
            {"hook": "patient-view", "description": "d", "id": "x", "prefetch": {}},
            "prefetch must be omitted rather than sent empty",
            id="empty-prefetch",
        ),
        pytest.param(
            ServiceDefinition,
            {"hook": "patient-view", "description": "d", "id": "x", "prefetch": {"patient": ""}},
            "at least 1 character",
            id="empty-template",
        ),
        pytest.param(Card, _card(summary="x" * 140), "at most 139 characters", id="summary-140"),
        pytest.param(Card, _card(indicator="hard-stop"), "'info', 'warning' or 'critical'", id="indicator"),
        pytest.param(
            Card,
            _card(suggestions=[_suggestion()]),
            "selectionBehavior is required when suggestions are present",
            id="suggestions-without-selection-behavior",
        ),
        pytest.param(
            Card,
            _card(selectionBehavior="all", suggestions=[_suggestion()]),
            "'at-most-one' or 'any'",
            id="selection-behavior-value",
        ),
        pytest.param(
            Card,
            _card(
                selectionBehavior="at-most-one",
                suggestions=[_suggestion(isRecommended=True), _suggestion(label="Refer", isRecommended=True)],
            ),
            "only one suggestion may be recommended with selectionBehavior at-most-one",
            id="two-recommended-at-most-one",
        ),
        pytest.param(
            CDSRequest,
            _request(fhirAuthorization=_authorization()),
            "fhirServer is required when fhirAuthorization is provided",
            id="authorization-without-server",
        ),
        pytest.param(
            CDSRequest,
            _request(fhirServer="fhir.example.org/r4"),
            "must be an absolute URL",
            id="relative-fhir-server",
        ),
        pytest.param(
            FhirAuthorization, {**_authorization(), "token_type": "MAC"}, "Input should be 'Bearer'", id="token-type"
        ),
        pytest.param(
            Card,
            _card(overrideReasons=[{"code": "refused", "system": "http://example.org/reasons"}]),
            "every override reason needs a display",
            id="override-reason-without-display",
        ),
        pytest.param(
            Link,
            {"label": "Guideline", "url": "https://nice.org.uk", "type": "relative"},
            "Input should be 'absolute' or 'smart'",
            id="link-type",
        ),
        pytest.param(
            Link,
            {"label": "Guideline", "url": "https://nice.org.uk", "type": "absolute", "appContext": "{}"},
            "appContext is only allowed on smart links",
            id="app-context-on-absolute",
        ),
        pytest.param(
            Link, {"label": "Guideline", "url": "/ng234", "type": "absolute"}, "must be an absolute URL", id="link-url"
        ),
        pytest.param(
            Action,
            {"type": "create", "description": "Order MRI"},
            "create actions must carry the FHIR resource",
            id="c",
        ),
        pytest.param(
            Action, {"type": "update", "description": "Amend"}, "update actions must carry the FHIR resource", id="u"
        ),
        pytest.param(
            Action,
            {"type": "create", "description": "Order MRI", "resource": {"status": "draft"}},
            "action resource must be a FHIR resource with a resourceType",
            id="resource-without-type",
        ),
        pytest.param(
            Action,
            {"type": "delete", "description": "Remove", "resourceId": "ServiceRequest/1", "resource": {}},
            "resource must be omitted rather than sent empty",
            id="empty-resource",
        ),
        pytest.param(
            Action,
            {"type": "delete", "description": "Remove the order"},
            "a delete action must name its target in resourceId",
            id="delete-without-resource-id",
        ),
        pytest.param(
            Action,
            {"type": "CREATE", "description": "Order", "resource": {"resourceType": "ServiceRequest"}},
            "'create', 'update' or 'delete'",
            id="action-type-case",
        ),
        pytest.param(
            CDSRequest, _request(extension=["org.example"]), "Input should be a valid dictionary", id="extension-list"
        ),
        pytest.param(Card, _card(extension="org.example"), "Input should be a valid dictionary", id="extension-str"),
        pytest.param(Card, _card(extension={}), "extension must be a non-empty JSON object", id="extension-empty"),
        pytest.param(
            FeedbackItem,
            _feedback(outcome="accepted"),
            "acceptedSuggestions is required for accepted outcomes",
            id="accepted-without-suggestions",
        ),
        pytest.param(
            FeedbackItem, _feedback(outcome="ignored"), "'accepted' or 'overridden'", id="feedback-outcome-value"
        ),
        pytest.param(
            FeedbackItem,
            _feedback(outcomeTimestamp="2020-12-11T00:00:00"),
            "outcomeTimestamp must carry a UTC offset",
            id="timestamp-without-offset",
        ),
        pytest.param(
            FeedbackItem,
            _feedback(outcomeTimestamp="yesterday"),
            "outcomeTimestamp must be an ISO 8601 / RFC 3339 date-time",
            id="timestamp-not-a-date",
        ),
        pytest.param(CDSRequest, _request(context=None), "context\n  Input should be a valid dictionary", id="ctx"),
        pytest.param(CDSRequest, {"hook": "patient-view", "context": {}}, "hookInstance\n  Field required", id="hi"),
    ],
)
def test_rule_violations_are_rejected_with_a_clear_message(
    model: type[WireModel], payload: dict[str, Any], message: str
) -> None:
    assert message in _rejection(model, payload)


def test_summary_of_139_characters_is_accepted() -> None:
    assert len(Card.model_validate(_card(summary="x" * 139)).summary) == 139


def test_several_recommended_suggestions_are_fine_with_selection_behavior_any() -> None:
    card = _card(
        selectionBehavior="any",
        suggestions=[_suggestion(isRecommended=True), _suggestion(label="Refer", isRecommended=True)],
    )
    assert Card.model_validate(card).to_json() == card


def test_delete_may_still_carry_its_target_in_the_deprecated_resource_field() -> None:
    action = {"type": "delete", "description": "Remove", "resource": {"resourceType": "ServiceRequest", "id": "1"}}
    assert Action.model_validate(action).to_json() == action


def test_feedback_timestamp_with_a_non_utc_offset_is_accepted() -> None:
    item = _feedback(outcomeTimestamp="2026-06-01T10:00:00+01:00")
    assert FeedbackItem.model_validate(item).to_json() == item


def test_assignment_is_validated_too() -> None:
    card = Card.model_validate(_card())
    with pytest.raises(ValidationError, match="at most 139 characters"):
        card.summary = "x" * 200


# -- what goes out on the wire -----------------------------------------------------------


def _null_or_empty_paths(value: Any, path: str = "$") -> list[str]:
    if value is None or (isinstance(value, (str, list, dict)) and not value):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _null_or_empty_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _null_or_empty_paths(item, f"{path}[{index}]")]
    return []


def test_to_json_never_emits_null_or_empty_values() -> None:
    card = Card(
        uuid=None,
        summary="Check for MSCC",
        detail=None,
        indicator="critical",
        source=Source(label="NICE NG234", url=None, icon=None, topic=Coding(code="R1", system="urn:x", display=None)),
        suggestions=[Suggestion(label="Order MRI", uuid=None, isRecommended=None, actions=None)],
        selectionBehavior="at-most-one",
        overrideReasons=None,
        links=None,
        extension=None,
    )
    response = CDSResponse(cards=[card], systemActions=None).to_json()
    assert _null_or_empty_paths(response) == []
    assert response == {
        "cards": [
            {
                "summary": "Check for MSCC",
                "indicator": "critical",
                "source": {"label": "NICE NG234", "topic": {"code": "R1", "system": "urn:x"}},
                "suggestions": [{"label": "Order MRI"}],
                "selectionBehavior": "at-most-one",
            }
        ]
    }


def test_an_empty_cards_array_is_the_one_empty_value_sent() -> None:
    assert CDSResponse().to_json() == {"cards": []}


def test_explicit_nulls_for_optional_fields_are_read_as_omitted_and_never_echoed() -> None:
    # Robustness: a client's "detail": null costs nothing to tolerate, and it never goes back out.
    card = Card.model_validate(_card(detail=None, links=None))
    assert card.to_json() == _card()


def test_prefetch_values_keep_their_nulls() -> None:
    # The spec's one exception to "no null": a prefetch key the client has no data for.
    request = _request(prefetch={"patient": None, "conditions": {"resourceType": "Bundle", "type": "searchset"}})
    assert CDSRequest.model_validate(request).to_json()["prefetch"]["patient"] is None


def test_fhir_authorization_repr_hides_the_access_token() -> None:
    authorization = FhirAuthorization.model_validate(_authorization())
    request = CDSRequest.model_validate(
        _request(fhirServer="https://ehr.example.org/fhir", fhirAuthorization=_authorization())
    )
    for text in (repr(authorization), str(authorization), repr(request), str(request)):
        assert "opaque-token-123" not in text
    assert "scope='user/Patient.read'" in repr(authorization)
    assert authorization.access_token == "opaque-token-123"


def test_validation_errors_about_the_token_do_not_echo_it_when_input_is_excluded() -> None:
    with pytest.raises(ValidationError) as caught:
        FhirAuthorization.model_validate({**_authorization(), "expires_in": "soon"})
    rendered = [str(error) for error in caught.value.errors(include_input=False)]
    assert all("opaque-token-123" not in line for line in rendered)

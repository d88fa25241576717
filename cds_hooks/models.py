"""Pydantic wire models for CDS Hooks 2.0: discovery, request, response, feedback.

The spec's JSON rules are enforced here, so that nothing the service builds can break
them on the wire ("Use of JSON"):

* no ``null`` and no empty values: strings are non-empty, optional lists have at least
  one member, and :meth:`WireModel.to_json` drops unset optionals (``exclude_none``);
  the only exceptions the spec makes are an empty ``cards`` array and ``null``
  prefetch values;
* ``extension`` is accepted wherever the spec allows it, and must be a JSON object;
* card, suggestion, link, action and feedback invariants live in validators below.

Inbound models ignore unknown fields (clients add vendor fields); outbound models are
the same classes, so a round trip of the specification's own examples is lossless for
every field the spec defines.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

__all__ = [
    "AcceptedSuggestion",
    "Action",
    "CDSRequest",
    "CDSResponse",
    "Card",
    "Coding",
    "DiscoveryResponse",
    "FeedbackItem",
    "FeedbackRequest",
    "FhirAuthorization",
    "Link",
    "OverrideReason",
    "ServiceDefinition",
    "Source",
    "Suggestion",
    "WireModel",
]

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
# "One-sentence, <140-character summary message" (Card Attributes).
Summary = Annotated[str, StringConstraints(min_length=1, max_length=139)]
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_PLAIN = 1024


def _uuid(value: str) -> str:
    # "A universally unique identifier (UUID) for this particular hook call": the canonical
    # 8-4-4-4-12 hex form, so that what reaches logs and storage is bounded and plain.
    if not _UUID.match(value):
        raise ValueError("must be a UUID such as d1577c69-dfbe-44ad-ba6d-3e05e953b2ea")
    return value


def _plain(value: str) -> str:
    # Client text a service may store (card ids, codes of override reasons): no NUL or other
    # control character ever reaches a database or a log, and its length is bounded.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if len(value) > _MAX_PLAIN:
        raise ValueError(f"must be at most {_MAX_PLAIN} characters")
    return value


HookInstance = Annotated[str, AfterValidator(_uuid), WithJsonSchema({"type": "string", "format": "uuid"})]
PlainStr = Annotated[str, StringConstraints(min_length=1), AfterValidator(_plain)]
Extension = dict[str, Any]
_ANY_URL: TypeAdapter[AnyUrl] = TypeAdapter(AnyUrl)


def _absolute_url(value: str) -> str:
    # Validated as a URL but kept as sent: AnyUrl would rewrite "https://example.com"
    # to "https://example.com/", so a round trip would change what the peer wrote.
    try:
        _ANY_URL.validate_python(value)
    except ValidationError:
        raise ValueError("must be an absolute URL") from None
    return value


Url = Annotated[str, AfterValidator(_absolute_url)]


class WireModel(BaseModel):
    """Base for every CDS Hooks JSON object."""

    model_config = ConfigDict(extra="ignore", frozen=False, validate_assignment=True)

    extension: Extension | None = None

    @field_validator("extension")
    @classmethod
    def _extension_is_object(cls, value: Extension | None) -> Extension | None:
        # "Its value MUST be a pre-coordinated JSON object"; empty objects are prohibited.
        if value is not None and not value:
            raise ValueError("extension must be a non-empty JSON object")
        return value

    def to_json(self) -> dict[str, Any]:
        """The spec's JSON: no ``null``s, no unset optionals."""
        return self.model_dump(mode="json", exclude_none=True)


def _non_empty(values: list[Any] | None, name: str) -> None:
    if values is not None and not values:
        raise ValueError(f"{name} must be omitted rather than sent empty")


# -- shared data types ------------------------------------------------------------------


class Coding(WireModel):
    """CDS Hooks Coding: ``system`` and ``code`` REQUIRED, ``display`` conditional."""

    code: PlainStr
    system: PlainStr
    display: PlainStr | None = None


# -- discovery --------------------------------------------------------------------------


class ServiceDefinition(WireModel):
    """One entry of ``services`` in the discovery response."""

    hook: NonEmptyStr
    title: NonEmptyStr | None = None
    description: NonEmptyStr
    id: NonEmptyStr
    prefetch: dict[str, NonEmptyStr] | None = None
    usageRequirements: NonEmptyStr | None = None

    @field_validator("prefetch")
    @classmethod
    def _prefetch_not_empty(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("prefetch must be omitted rather than sent empty")
        return value


class DiscoveryResponse(WireModel):
    services: list[ServiceDefinition]


# -- request ----------------------------------------------------------------------------


class FhirAuthorization(WireModel):
    """OAuth 2.0 access token the CDS Client grants for ``fhirServer``.

    The token is transient: the repr hides it so that it never reaches a log line.
    """

    access_token: NonEmptyStr = Field(repr=False)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: NonEmptyStr
    subject: NonEmptyStr
    patient: NonEmptyStr | None = None


class CDSRequest(WireModel):
    """The body a CDS Client POSTs to ``{baseUrl}/cds-services/{id}``."""

    hook: NonEmptyStr
    hookInstance: HookInstance
    fhirServer: Url | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    # Values stay raw JSON: ``None`` is meaningful ("no data"), and validating whole
    # Bundles here would cost far more than the hook's latency budget.
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> Self:
        # cds-r-1: fhirAuthorization.exists() implies fhirServer.exists()
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is provided")
        return self

    @property
    def fhir_server_base(self) -> str | None:
        """``fhirServer`` without a trailing slash, ready to append ``/Type?query``."""
        return self.fhirServer.rstrip("/") if self.fhirServer is not None else None


# -- response ---------------------------------------------------------------------------


class Source(WireModel):
    label: NonEmptyStr
    url: Url | None = None
    icon: Url | None = None
    topic: Coding | None = None


class Action(WireModel):
    """A suggestion action or a system action."""

    type: Literal["create", "update", "delete"]
    description: NonEmptyStr
    resource: dict[str, Any] | None = None
    resourceId: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _target_matches_type(self) -> Self:
        if self.resource is not None and not self.resource:
            raise ValueError("resource must be omitted rather than sent empty")
        if self.type in ("create", "update"):
            if not self.resource:
                raise ValueError(f"{self.type} actions must carry the FHIR resource")
            if "resourceType" not in self.resource:
                raise ValueError("action resource must be a FHIR resource with a resourceType")
        elif self.resourceId is None and not self.resource:
            # Carrying the delete target in ``resource`` is deprecated but still legal.
            raise ValueError("a delete action must name its target in resourceId")
        return self


class Suggestion(WireModel):
    label: NonEmptyStr
    uuid: NonEmptyStr | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None

    @field_validator("actions")
    @classmethod
    def _actions_not_empty(cls, value: list[Action] | None) -> list[Action] | None:
        _non_empty(value, "actions")
        return value


class Link(WireModel):
    label: NonEmptyStr
    url: Url
    type: Literal["absolute", "smart"]
    appContext: NonEmptyStr | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Self:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links")
        return self


class Card(WireModel):
    uuid: NonEmptyStr | None = None
    summary: Summary
    detail: NonEmptyStr | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @field_validator("suggestions", "overrideReasons", "links")
    @classmethod
    def _lists_not_empty(cls, value: list[Any] | None) -> list[Any] | None:
        _non_empty(value, "card lists")
        return value

    @field_validator("overrideReasons")
    @classmethod
    def _override_reasons_displayed(cls, value: list[Coding] | None) -> list[Coding] | None:
        # "the CDS Service MUST populate a display value for each reason's Coding"
        if value is not None and any(reason.display is None for reason in value):
            raise ValueError("every override reason needs a display")
        return value

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> Self:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        if self.selectionBehavior == "at-most-one" and self.suggestions:
            recommended = sum(1 for suggestion in self.suggestions if suggestion.isRecommended)
            if recommended > 1:
                raise ValueError("only one suggestion may be recommended with selectionBehavior at-most-one")
        return self


class CDSResponse(WireModel):
    # An empty list is the spec's way to say "no guidance", so no min length here.
    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] | None = None

    @field_validator("systemActions")
    @classmethod
    def _system_actions_not_empty(cls, value: list[Action] | None) -> list[Action] | None:
        _non_empty(value, "systemActions")
        return value


# -- feedback ---------------------------------------------------------------------------


class AcceptedSuggestion(WireModel):
    id: PlainStr


class OverrideReason(WireModel):
    """Why a user overrode a card; clients often send ``reason`` without ``display``."""

    reason: Coding | None = None
    userComment: NonEmptyStr | None = None


class FeedbackItem(WireModel):
    card: PlainStr
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: NonEmptyStr

    @field_validator("acceptedSuggestions")
    @classmethod
    def _accepted_suggestions_not_empty(cls, value: list[AcceptedSuggestion] | None) -> list[AcceptedSuggestion] | None:
        _non_empty(value, "acceptedSuggestions")
        return value

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> Self:
        # "Required for accepted outcomes"
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required for accepted outcomes")
        return self

    @field_validator("outcomeTimestamp")
    @classmethod
    def _timestamp_is_rfc3339(cls, value: str) -> str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("outcomeTimestamp must be an ISO 8601 / RFC 3339 date-time") from exc
        if parsed.tzinfo is None:
            raise ValueError("outcomeTimestamp must carry a UTC offset")
        try:
            # 0001-01-01T00:00:00+14:00 is a valid spelling of an instant before year 1 in UTC.
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("outcomeTimestamp must be an instant between years 1 and 9999 in UTC") from None
        return value


class FeedbackRequest(WireModel):
    feedback: list[FeedbackItem] = Field(min_length=1)

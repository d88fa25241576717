"""Prefetch templates: rendering their tokens and classifying what a client sent.

CDS Hooks 2.0, "Prefetch tokens": a token is ``{{context.<field>}}`` naming a root-level
primitive field of the hook context, or one of the user identifiers
``{{userPractitionerId}}``, ``{{userPractitionerRoleId}}``, ``{{userPatientId}}``,
``{{userRelatedPersonId}}`` derived from ``context.userId``.

"Providing FHIR Resources": for each key the service declared, a client may send the
data, send ``null`` (it has none), send an OperationOutcome (it failed), or omit the
key (it chose not to, or could not). :func:`classify_prefetch` names those four states;
what to do in each is the service's decision (see :class:`PrefetchState`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from cds_hooks.contexts import FHIR_ID

__all__ = [
    "PrefetchState",
    "PrefetchTemplateError",
    "check_template_subset",
    "check_template_tokens",
    "classify_prefetch",
    "render_template",
]

_TOKEN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_PRIMITIVES = (str, int, float, bool)


class PrefetchTemplateError(ValueError):
    """A template names a token that this hook's context cannot fill."""


class PrefetchState(enum.Enum):
    """What a client sent for one declared prefetch key (spec §"Prefetch")."""

    #: data is present: use it (a Bundle may be empty, which is still data)
    PRESENT = "present"
    #: ``null``: "no data exists" for the template; never re-query it
    NULL = "null"
    #: the key is missing: the service must fetch the data itself, or answer 412
    ABSENT = "absent"
    #: the client's own query failed; treat like absent for fetching purposes
    OPERATION_OUTCOME = "operation-outcome"


def _user_identifier(token: str, context: Mapping[str, Any]) -> str:
    user_id = context.get("userId")
    wanted = _USER_TOKENS[token]
    if isinstance(user_id, str) and "/" in user_id:
        resource_type, _, identifier = user_id.partition("/")
        # A FHIR id only: it goes into a query ("Practitioner/1&_include=*" is not one).
        if resource_type == wanted and FHIR_ID.match(identifier):
            return identifier
    raise PrefetchTemplateError(f"{{{{{token}}}}} needs context.userId of the form {wanted}/<id>")


def _token_value(token: str, context: Mapping[str, Any]) -> str:
    if token in _USER_TOKENS:
        return _user_identifier(token, context)
    if not token.startswith("context."):
        raise PrefetchTemplateError(f"unknown prefetch token {{{{{token}}}}}")
    field = token.removeprefix("context.")
    # "Only root-level fields with a primitive value within the context object are eligible"
    if not field or "." in field:
        raise PrefetchTemplateError(f"{{{{{token}}}}} is not a root-level context field")
    value = context.get(field)
    if value is None:
        raise PrefetchTemplateError(f"context.{field} is not available for {{{{{token}}}}}")
    if not isinstance(value, _PRIMITIVES):
        raise PrefetchTemplateError(f"context.{field} is not a primitive value")
    if isinstance(value, bool):
        # JSON and FHIR search spell booleans in lower case; str(True) would not.
        return "true" if value else "false"
    return str(value)


def check_template_tokens(template: str, token_fields: Iterable[str]) -> None:
    """Raise :class:`PrefetchTemplateError` if ``template`` uses a token its hook cannot fill.

    ``token_fields`` are the hook's context fields marked as prefetch tokens (see
    :data:`cds_hooks.contexts.PREFETCH_TOKEN_FIELDS`); the user tokens need ``userId``.
    """
    fields = set(token_fields)
    for match in _TOKEN.finditer(template):
        token = match.group(1)
        field = "userId" if token in _USER_TOKENS else token.removeprefix("context.")
        if (token not in _USER_TOKENS and not token.startswith("context.")) or field not in fields:
            raise PrefetchTemplateError(f"{{{{{token}}}}} is not a prefetch token of this hook")


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Replace every token of ``template`` with its value from the hook ``context``, URL-encoded.

    Every value is percent-encoded, so that no context value can add a search parameter
    or a path segment (``p1&_include=*`` stays one value); only the ``/`` of the spec's
    ``{{context.userId}}`` read (``Practitioner/123``) is kept.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return quote(_token_value(name, context), safe="/" if name == "context.userId" else "")

    return _TOKEN.sub(value, template)


def classify_prefetch(declared: Iterable[str], prefetch: Mapping[str, Any] | None) -> dict[str, PrefetchState]:
    """Classify every declared key of a request's ``prefetch`` object."""
    sent = prefetch or {}
    states: dict[str, PrefetchState] = {}
    for key in declared:
        if key not in sent:
            states[key] = PrefetchState.ABSENT
            continue
        value = sent[key]
        if value is None:
            states[key] = PrefetchState.NULL
        elif isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome":
            states[key] = PrefetchState.OPERATION_OUTCOME
        else:
            states[key] = PrefetchState.PRESENT
    return states


# "Prefetch query restrictions": instance read, type search, token equality (:in),
# date prefixes eq|lt|gt|ge|le, _count and _sort. Anything else makes a template
# non-portable, because the client need not support it. ``_id`` (token) and
# ``_lastUpdated`` (date) are search parameters of every resource, not controls
# (the spec's own example reads ``PractitionerRole?_id={{userPractitionerRoleId}}``).
_UNDERSCORE_PARAMETERS = {"_count", "_sort", "_id", "_lastUpdated"}
_DATE_PREFIX = re.compile(r"^(eq|lt|gt|ge|le)(\d{4}|\{\{)")
# The spec's user read: "user": "{{context.userId}}" renders to Practitioner/<id> etc.
_USER_READ = re.compile(r"^\{\{\s*context\.userId\s*\}\}$")


def check_template_subset(template: str, date_params: Iterable[str] = ("date", "authored", "started")) -> None:
    """Raise :class:`PrefetchTemplateError` if ``template`` leaves the spec's RECOMMENDED subset."""
    path, _, query = template.partition("?")
    if not query and _USER_READ.match(path):
        return
    segments = [segment for segment in urlsplit(path).path.split("/") if segment]
    if not segments or not segments[0][:1].isupper():
        raise PrefetchTemplateError(f"template must start with a resource type: {template!r}")
    if not query:
        if len(segments) != 2:
            raise PrefetchTemplateError(f"a template without a query must be an instance read: {template!r}")
        return
    if len(segments) != 1:
        raise PrefetchTemplateError(f"a search template must be type-level: {template!r}")
    dates = set(date_params)
    for name, value in parse_qsl(query, keep_blank_values=True):
        base, _, modifier = name.partition(":")
        if base.startswith("_") and base not in _UNDERSCORE_PARAMETERS:
            raise PrefetchTemplateError(f"search control {name!r} is outside the prefetch subset")
        if modifier and modifier != "in":
            raise PrefetchTemplateError(f"modifier :{modifier} is outside the prefetch subset")
        if "." in base:
            raise PrefetchTemplateError(f"chained parameter {name!r} is outside the prefetch subset")
        if (base in dates or base == "_lastUpdated") and not _DATE_PREFIX.match(value):
            raise PrefetchTemplateError(f"date parameter {name}={value!r} needs an eq|lt|gt|ge|le prefix")

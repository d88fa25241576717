"""Reading FHIR Bundles as plain JSON: their resources, their ``next`` page, and their shape.

:func:`bundle_resources` is lenient (it skips what is not a resource): the FHIR client and
the scenario loader use it on documents a server produced. :func:`prefetch_entries` is
strict: a prefetch value is the client's answer to one of our templates, and a value that
is not FHIR of the expected type must never read as "no data for this patient"
(docs/clinical/patient-integrity.md), so it raises :class:`NotFhir` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import MsccError
from service.fhir.record import Resource

__all__ = ["Entry", "NotFhir", "bundle_resources", "next_link", "prefetch_entries", "resource_kind"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One resource of a prefetch value, with its Bundle ``fullUrl`` when it had one."""

    resource: Resource
    full_url: str | None = None


class NotFhir(MsccError, ValueError):
    """A prefetch value that is not FHIR of the expected shape; the message is safe to show (no data)."""


def _type_name(value: Mapping[str, Any]) -> str | None:
    kind = value.get("resourceType")
    # a resourceType is [A-Z][A-Za-z]+ in FHIR; anything else is client text, not echoed
    if isinstance(kind, str) and kind.isascii() and kind.isalpha() and len(kind) <= 64:
        return kind
    return None


def resource_kind(value: object) -> str:
    """``"a Condition"``, for messages: only a plausible resource type is ever echoed back."""
    if isinstance(value, Mapping):
        kind = _type_name(value)
        return f"a {kind}" if kind else "an object without a valid resourceType"
    names = {list: "a JSON array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "a JSON value")


def bundle_resources(value: Any) -> list[Resource]:
    """The resources of a prefetch value: a Bundle's entries, or a single resource."""
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") != "Bundle":
        return [dict(value)]
    # Parsed JSON holds plain dicts: a dict check (not the Mapping ABC) is the cheap one on this
    # per-entry path. search.mode "outcome" entries are the server's OperationOutcome, not data.
    entries = value.get("entry")
    if not isinstance(entries, list):  # absent, or not FHIR (a number, ``true``): no resources
        return []
    return [
        resource
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(resource := entry.get("resource"), dict)
        and resource.get("resourceType") != "OperationOutcome"
    ]


def _entry(raw: object) -> Entry | None:
    """One Bundle entry; ``None`` for the server's OperationOutcome; :class:`NotFhir` if malformed."""
    if not isinstance(raw, dict):
        raise NotFhir(f"a Bundle entry is {resource_kind(raw)}, not an object")
    resource = raw.get("resource")
    if not isinstance(resource, dict):
        raise NotFhir("a Bundle entry has no resource")
    if not isinstance(resource.get("resourceType"), str):
        raise NotFhir("a Bundle entry's resource has no resourceType")
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise NotFhir("a Bundle entry's fullUrl is not a string")
    if resource["resourceType"] == "OperationOutcome":
        return None
    return Entry(resource, full_url)


def prefetch_entries(value: object, expected: str) -> list[Entry]:
    """The resources of a prefetch value whose template asks for ``expected`` resources.

    Accepted: one ``expected`` resource, or a Bundle whose ``entry`` (if any) is a list of
    entries that each hold a resource, at least one of them an ``expected`` one unless the
    Bundle is empty (others may ride along, e.g. ``_include``). Anything else raises
    :class:`NotFhir`: a number, a list, a string, a Bundle of Patients for a Condition query.
    """
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise NotFhir(f"{resource_kind(value)} where {_wanted(expected)} was expected")
    if value["resourceType"] == expected:
        return [Entry(value)]
    if value["resourceType"] != "Bundle":
        raise NotFhir(f"{resource_kind(value)} where {_wanted(expected)} was expected")
    raw_entries = value.get("entry", [])
    if not isinstance(raw_entries, list):
        raise NotFhir(f"Bundle.entry is {resource_kind(raw_entries)}, not a list")
    entries = [entry for raw in raw_entries if (entry := _entry(raw)) is not None]
    if entries and not any(entry.resource["resourceType"] == expected for entry in entries):
        kinds = sorted({_type_name(entry.resource) or "unnamed" for entry in entries})
        raise NotFhir(f"a Bundle of {', '.join(kinds)} resources where {_wanted(expected)} was expected")
    return entries


def _wanted(expected: str) -> str:
    return f"a {expected}" if expected == "Patient" else f"a Bundle of {expected} resources"


def next_link(value: Any) -> str | None:
    """The URL of the Bundle's next page (``link`` with relation ``next``), if any."""
    if not isinstance(value, Mapping) or value.get("resourceType") != "Bundle":
        return None
    links = value.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url.strip():
                return url.strip()
    return None

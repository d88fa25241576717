"""Reading FHIR Bundles as plain JSON: their resources and their ``next`` page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.fhir.record import Resource

__all__ = ["bundle_resources", "next_link"]


def bundle_resources(value: Any) -> list[Resource]:
    """The resources of a prefetch value: a Bundle's entries, or a single resource."""
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") != "Bundle":
        return [dict(value)]
    # Parsed JSON holds plain dicts: a dict check (not the Mapping ABC) is the cheap one on this
    # per-entry path. search.mode "outcome" entries are the server's OperationOutcome, not data.
    return [
        resource
        for entry in value.get("entry") or ()
        if isinstance(entry, dict)
        and isinstance(resource := entry.get("resource"), dict)
        and resource.get("resourceType") != "OperationOutcome"
    ]


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

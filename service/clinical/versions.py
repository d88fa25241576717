"""Several copies or versions of one resource in a record: only the latest is read.

An EHR's prefetch can hold one resource twice: under two keys, on two pages of a search
that changed while it was paged, or as two versions (a history Bundle, a feed that
appends updates). Reading both would count a sign its own correction withdrew (a
``final`` Observation later ``entered-in-error``). Copies are the same ``resourceType``
and ``id``; the latest is the one with the higher ``meta.versionId`` when both are
whole numbers, else the later ``meta.lastUpdated`` when both can be read, else the one
met last in the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from service.clinical.timing import parse_time

__all__ = ["older_versions", "superseded"]

_NONE: frozenset[int] = frozenset()


def superseded(resources: Iterable[object]) -> frozenset[int]:
    """``id()`` of every resource an identical-identity later version supersedes."""
    resources = list(resources)
    # Nearly every record holds each (type, id) once, which one pass of builtins shows at
    # about a third of the cost of the comparison below (an id that is a JSON list or
    # object cannot be hashed: such a record takes the full pass, which ignores it).
    try:
        identities = [(item.get("resourceType"), item.get("id")) for item in resources if type(item) is dict]
        if len(set(identities)) == len(identities):
            return _NONE
    except TypeError:
        pass
    return older_versions(resources)


def older_versions(resources: Iterable[object]) -> frozenset[int]:
    """:func:`superseded` by comparing every resource's identity with the latest kept (the full pass)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    older: list[int] = []
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        kind, ident = resource.get("resourceType"), resource.get("id")
        if not isinstance(kind, str) or not isinstance(ident, str):
            continue
        key = (kind, ident)
        kept = latest.get(key)
        if kept is None:
            latest[key] = resource
        elif _newer(kept, resource):
            older.append(id(resource))
        else:
            older.append(id(kept))
            latest[key] = resource
    return frozenset(older)


def _newer(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether ``first`` is a later version than ``second`` (met after it in the record)."""
    first_meta, second_meta = _meta(first), _meta(second)
    versions = (first_meta.get("versionId"), second_meta.get("versionId"))
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    if all(_whole_number(version) for version in versions) and versions[0] != versions[1]:
        return int(str(versions[0])) > int(str(versions[1]))
    updated = [parse_time(meta.get("lastUpdated"), UTC) for meta in (first_meta, second_meta)]
    if updated[0] is not None and updated[1] is not None and updated[0].start != updated[1].start:
        return updated[0].start > updated[1].start
    return False


def _whole_number(version: object) -> bool:
    return isinstance(version, str) and version.isascii() and version.isdigit()


def _meta(resource: dict[str, Any]) -> dict[str, Any]:
    meta = resource.get("meta")
    return meta if isinstance(meta, dict) else {}

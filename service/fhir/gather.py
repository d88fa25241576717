"""Collect a patient's data for one hook call: prefetch first, the FHIR server second.

The decision table of CDS Hooks 2.0 "Prefetch" (cds-hooks.md §1.4):

========================  ==================================================
key state                 what we do
========================  ==================================================
present (Bundle/resource)  use it
``null``                  "no data exists": use nothing, never re-query
absent                    query ``fhirServer``; if impossible and required: 412
OperationOutcome          the client's query failed: as absent
========================  ==================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from cds_hooks.contexts import HookContext, OrderSignContext
from cds_hooks.errors import PayloadTooLarge, PreconditionFailed
from cds_hooks.models import CDSRequest
from cds_hooks.prefetch import PrefetchState, PrefetchTemplateError, classify_prefetch, render_template
from service.fhir.record import DataGap, PatientRecord, Resource

__all__ = ["FhirFetchError", "FhirSearcher", "PatientDataGatherer", "bundle_resources"]


class FhirFetchError(Exception):
    """A query to the FHIR server failed; ``reason`` is safe to log (no PHI, no token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FhirSearcher(Protocol):
    """Runs rendered prefetch queries against a client's FHIR server."""

    async def fetch(self, base_url: str, query: str, access_token: str | None) -> list[Resource]:
        """All resources the query returns (a read gives one); raise :class:`FhirFetchError`."""
        ...


def bundle_resources(value: Any) -> list[Resource]:
    """The resources of a prefetch value: a Bundle's entries, or a single resource."""
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") != "Bundle":
        return [dict(value)]
    resources = []
    for entry in value.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        # search.mode "outcome" entries are the server's OperationOutcome, not data
        if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
            resources.append(resource)
    return resources


class PatientDataGatherer:
    """Fills a :class:`PatientRecord` for one request, per the decision table above."""

    def __init__(
        self,
        templates: Mapping[str, str],
        required: frozenset[str],
        searcher: FhirSearcher | None,
        *,
        max_entries: int,
    ) -> None:
        self._templates = dict(templates)
        self._required = required
        self._searcher = searcher
        self._max_entries = max_entries

    async def gather(self, request: CDSRequest, context: HookContext) -> PatientRecord:
        states = classify_prefetch(self._templates, request.prefetch)
        record = PatientRecord(patient_id=context.patientId, states=states)
        prefetch = request.prefetch or {}
        missing: list[str] = []
        for key, state in states.items():
            if state is PrefetchState.PRESENT:
                record.resources[key] = bundle_resources(prefetch[key])
            elif state is PrefetchState.NULL:
                record.resources[key] = []
            else:
                missing.append(key)
        if isinstance(context, OrderSignContext):
            record.draft_orders = bundle_resources(context.draftOrders)
        self._check_size(record)
        if missing:
            await self._fetch_missing(request, context, record, missing)
            self._check_size(record)
        unobtainable = sorted(self._required & {gap.key for gap in record.gaps})
        if unobtainable:
            raise PreconditionFailed(
                details=[f"prefetch key {key!r}: {self._gap_reason(record, key)}" for key in unobtainable]
            )
        return record

    def _check_size(self, record: PatientRecord) -> None:
        total = sum(len(resources) for resources in record.resources.values()) + len(record.draft_orders)
        if total > self._max_entries:
            raise PayloadTooLarge(f"The patient data holds more than {self._max_entries} resources.")

    @staticmethod
    def _gap_reason(record: PatientRecord, key: str) -> str:
        return next(gap.reason for gap in record.gaps if gap.key == key)

    async def _fetch_missing(
        self, request: CDSRequest, context: HookContext, record: PatientRecord, keys: list[str]
    ) -> None:
        base = request.fhir_server_base
        if base is None or self._searcher is None:
            reason = "not prefetched and no fhirServer to query" if base is None else "not prefetched"
            record.gaps.extend(DataGap(key, reason) for key in keys)
            return
        token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
        context_values = context.model_dump()
        queries: dict[str, str] = {}
        for key in keys:
            try:
                queries[key] = render_template(self._templates[key], context_values)
            except PrefetchTemplateError as exc:
                record.gaps.append(DataGap(key, f"template cannot be rendered: {exc}"))
        searcher = self._searcher
        results = await asyncio.gather(
            *(searcher.fetch(base, query, token) for query in queries.values()), return_exceptions=True
        )
        for key, result in zip(queries, results, strict=True):
            if isinstance(result, FhirFetchError):
                record.gaps.append(DataGap(key, result.reason))
            elif isinstance(result, BaseException):
                raise result
            else:
                record.resources[key] = result
                record.fetched[key] = len(result)

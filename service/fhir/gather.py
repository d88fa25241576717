"""Collect a patient's data for one hook call: prefetch first, the FHIR server second.

The decision table of CDS Hooks 2.0 "Prefetch" (cds-hooks.md §1.4):

========================  ==================================================
key state                 what we do
========================  ==================================================
present (Bundle/resource)  use it; a Bundle with a ``next`` link is completed
                          from ``fhirServer`` (the client "MAY paginate")
``null``                  "no data exists": use nothing, never re-query
absent                    query ``fhirServer``; if impossible and required: 412
OperationOutcome          the client's query failed: as absent
unreadable                not FHIR of the template's type, or only another
                          patient's resources: as absent (never "no data")
========================  ==================================================

Data that is only partly read (a paged prefetch that cannot be completed, a search
longer than ``max_pages``) is screened as far as it goes: the key becomes a *partial*
gap, which the cards name and which never answers 412 (docs/clinical/data-quality.md).

Whatever arrives, from the prefetch or the server, keeps only the context patient's
resources (:mod:`service.fhir.integrity`); the rest is counted in ``record.excluded``.

All queries of one call run in parallel under one time budget: a query still running
when it ends becomes a gap, and the answers that did arrive are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from itertools import chain
from typing import Protocol

from cds_hooks.contexts import HookContext, OrderSelectContext, OrderSignContext
from cds_hooks.errors import PayloadTooLarge, PreconditionFailed
from cds_hooks.models import CDSRequest
from cds_hooks.prefetch import PrefetchState, PrefetchTemplateError, classify_prefetch, render_template
from service.clinical.recordparts import DataGap, RecordPart
from service.errors import MsccError
from service.fhir.budget import fetch_budget, remaining_s
from service.fhir.bundle import Entry, NotFhir, bundle_resources, next_link, prefetch_entries
from service.fhir.integrity import PatientScope
from service.fhir.record import PatientRecord, Resource

__all__ = ["BUDGET_EXCEEDED", "FhirFetchError", "FhirSearcher", "PatientDataGatherer", "bundle_resources"]

BUDGET_EXCEEDED = "no answer from the FHIR server within the time budget"


class FhirFetchError(MsccError):
    """A query to the FHIR server failed; ``reason`` is safe to log (no PHI, no token).

    ``status`` is the server's HTTP status when it answered with a failure. ``partial``:
    what was read before the failure (the pages before the page cap), when that is worth
    screening.
    """

    def __init__(self, reason: str, *, status: int | None = None, partial: list[Resource] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial


class FhirSearcher(Protocol):
    """Runs rendered prefetch queries against a client's FHIR server."""

    async def fetch(self, base_url: str, query: str, access_token: str | None) -> list[Resource]:
        """All resources the query returns (a read gives one); raise :class:`FhirFetchError`.

        ``query`` is a rendered template relative to ``base_url`` (``Condition?patient=1``)
        or an absolute URL, which must lie under ``base_url`` (a prefetch Bundle's next page).
        """
        ...


class PatientDataGatherer:
    """Fills a :class:`PatientRecord` for one request, per the decision table above."""

    def __init__(
        self,
        templates: Mapping[str, str],
        required: frozenset[str],
        searcher: FhirSearcher | None,
        *,
        parts: Mapping[str, RecordPart],
        max_entries: int,
        budget_s: float | None = None,
    ) -> None:
        self._templates = dict(templates)
        self._required = required
        # The part of the record each key fetches: its gaps and exclusions carry it to the rules and cards.
        self._parts = dict(parts)
        self._searcher = searcher
        self._max_entries = max_entries
        self._budget_s = budget_s

    async def gather(self, request: CDSRequest, context: HookContext) -> PatientRecord:
        """:meth:`collect`, then :meth:`require`: the record, or 412."""
        record = await self.collect(request, context)
        self.require(record)
        return record

    async def collect(self, request: CDSRequest, context: HookContext) -> PatientRecord:
        """Everything obtainable; what is not is in ``record.gaps`` (required or not).

        Every resource passes :class:`PatientScope` on both paths: another patient's data is
        dropped and counted in ``record.excluded``. A present value that is not FHIR of the
        template's type, or that holds only resources of someone else, is *unreadable*:
        fetched like an absent key when the request allows, else a gap (412 if required).
        """
        states = classify_prefetch(self._templates, request.prefetch)
        record = PatientRecord(patient_id=context.patientId, states=states)
        prefetch = request.prefetch or {}
        entries: dict[str, list[Entry]] = {}
        #: key -> why its prefetch value cannot be used (safe to show: no data in it)
        unreadable: dict[str, str] = {}
        missing: list[str] = []
        paged: dict[str, str] = {}
        for key, state in states.items():
            if state is PrefetchState.PRESENT:
                try:
                    entries[key] = self._entries(key, prefetch[key])
                except NotFhir as exc:
                    unreadable[key] = f"the prefetch value is {exc}"
                    continue
                if (url := next_link(prefetch[key])) is not None:
                    paged[key] = url
            elif state is PrefetchState.NULL:
                record.resources[key] = []
            else:
                missing.append(key)
        drafts = (
            [Entry(resource) for resource in bundle_resources(context.draftOrders)]
            if isinstance(context, OrderSignContext)
            else []
        )
        # Counted as sent, before anything is dropped: the cap bounds the work, whoever the data is about.
        self._check_count(sum(len(found) for found in entries.values()) + len(drafts))
        scope = PatientScope(
            context.patientId, request.fhir_server_base, [*chain.from_iterable(entries.values()), *drafts]
        )
        # The snapshot reads whose a finding is (Observation.focus) as the scope reads whose a resource is.
        record.references = scope.references
        for key, found in entries.items():
            own = self._keep_own(scope, record, key, [entry.resource for entry in found])
            if own is None:
                unreadable[key] = "the prefetch value holds only resources that are not this patient's"
                paged.pop(key, None)
            else:
                record.resources[key] = own
        if drafts:
            record.draft_orders, dropped = scope.keep_own(
                "draftOrders", [entry.resource for entry in drafts], RecordPart.DRAFT_ORDERS
            )
            record.excluded.extend(dropped)
        if isinstance(context, OrderSelectContext):
            record.selections = tuple(context.selections)
        if missing or paged or unreadable:
            await self._fetch(request, context, record, scope, [*missing, *unreadable], paged, unreadable)
            self._check_size(record)
        return record

    def _entries(self, key: str, value: object) -> list[Entry]:
        expected = _expected_type(self._templates[key])
        if expected is None:
            return [Entry(resource) for resource in bundle_resources(value)]
        return prefetch_entries(value, expected)

    def _keep_own(
        self, scope: PatientScope, record: PatientRecord, key: str, resources: list[Resource]
    ) -> list[Resource] | None:
        """The patient's own resources of ``key``; ``None`` when only someone else's were there."""
        own, dropped = scope.keep_own(key, resources, self._parts.get(key))
        record.excluded.extend(dropped)
        expected = _expected_type(self._templates[key])
        if dropped and not any(expected in (None, resource.get("resourceType")) for resource in own):
            return None
        return own

    def require(self, record: PatientRecord) -> None:
        """Raise 412 when data the rules cannot do without is missing from ``record``."""
        unobtainable = sorted(self._required & {gap.key for gap in record.gaps if not gap.partial})
        if unobtainable:
            raise PreconditionFailed(
                details=[f"prefetch key {key!r}: {self._gap_reason(record, key)}" for key in unobtainable]
            )

    def _check_size(self, record: PatientRecord) -> None:
        self._check_count(sum(len(resources) for resources in record.resources.values()) + len(record.draft_orders))

    def _check_count(self, total: int) -> None:
        if total > self._max_entries:
            raise PayloadTooLarge(f"The patient data holds more than {self._max_entries} resources.")

    def _gap(self, key: str, reason: str, *, partial: bool = False) -> DataGap:
        return DataGap(key, reason, partial, self._parts.get(key))

    @staticmethod
    def _gap_reason(record: PatientRecord, key: str) -> str:
        return next(gap.reason for gap in record.gaps if gap.key == key)

    async def _fetch(
        self,
        request: CDSRequest,
        context: HookContext,
        record: PatientRecord,
        scope: PatientScope,
        missing: list[str],
        paged: dict[str, str],
        unreadable: Mapping[str, str],
    ) -> None:
        base = request.fhir_server_base
        if base is None or self._searcher is None:
            reason = "no fhirServer to query" if base is None else "no FHIR client configured"
            record.gaps.extend(
                self._gap(key, f"{unreadable.get(key, 'not prefetched')} and {reason}") for key in missing
            )
            # Only the first page arrived: the rest may hold exactly what a rule needs.
            record.gaps.extend(
                self._gap(key, f"prefetch has further pages and {reason}", partial=True) for key in paged
            )
            return
        token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
        context_values = context.model_dump()
        searcher = self._searcher
        jobs: dict[str, Awaitable[list[Resource]]] = {}
        for key in missing:
            try:
                query = render_template(self._templates[key], context_values)
            except PrefetchTemplateError as exc:
                record.gaps.append(self._gap(key, f"template cannot be rendered: {exc}"))
                continue
            jobs[key] = searcher.fetch(base, query, token)
        for key, url in paged.items():
            jobs[key] = searcher.fetch(base, url, token)
        results = await self._run(jobs)
        for key, result in results.items():
            if isinstance(result, FhirFetchError):
                # What arrived before the error is screened as far as it goes (a partial gap).
                arrived = self._keep_own(scope, record, key, result.partial or [])
                if key in paged:
                    record.resources[key].extend(arrived or ())
                    record.gaps.append(self._gap(key, f"further prefetch pages: {result.reason}", partial=True))
                elif result.partial is not None and arrived is not None:
                    record.resources[key] = arrived
                    record.fetched[key] = len(result.partial)
                    record.gaps.append(self._gap(key, result.reason, partial=True))
                else:
                    record.gaps.append(self._gap(key, result.reason))
                continue
            record.fetched[key] = len(result)
            own = self._keep_own(scope, record, key, result)
            if own is None:
                record.gaps.append(self._gap(key, "the FHIR server sent only resources that are not this patient's"))
            elif key in paged:
                record.resources[key].extend(own)
            else:
                record.resources[key] = own

    async def _run(self, jobs: dict[str, Awaitable[list[Resource]]]) -> dict[str, list[Resource] | FhirFetchError]:
        """Await every job in parallel; those still running when the budget ends become errors."""
        if not jobs:
            return {}
        if self._budget_s is None:
            outcomes = await asyncio.gather(*jobs.values(), return_exceptions=True)
            return {key: self._outcome(value) for key, value in zip(jobs, outcomes, strict=True)}
        with fetch_budget(self._budget_s) as deadline:
            tasks = {key: asyncio.ensure_future(job) for key, job in jobs.items()}
        try:
            await asyncio.wait(tasks.values(), timeout=remaining_s(deadline))
        finally:
            late = [task for task in tasks.values() if not task.done()]
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        return {
            key: FhirFetchError(BUDGET_EXCEEDED)
            if task.cancelled()
            else self._outcome(task.exception() or task.result())
            for key, task in tasks.items()
        }

    @staticmethod
    def _outcome(value: list[Resource] | BaseException) -> list[Resource] | FhirFetchError:
        if isinstance(value, FhirFetchError) or not isinstance(value, BaseException):
            return value
        raise value


def _expected_type(template: str) -> str | None:
    """The resource type a template asks for (``Condition?…``, ``Patient/{{…}}``); else ``None``."""
    first = template.partition("?")[0].split("/", 1)[0]
    return first if first[:1].isupper() and first.isalpha() else None

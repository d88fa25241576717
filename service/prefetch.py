"""The screening service's prefetch templates, inside the spec's recommended subset.

Only ``patient`` and ``conditions`` are required: without an age and a cancer history
no rule can be decided. Every other key improves the answer but is optional; when it
cannot be read the cards say so instead of the hook failing.
Code lists come from the value sets, so the queries ask for exactly what the rules read.
The rules know parts of the record, never these keys: :data:`RECORD_PARTS` says which part
each key fetches, and the gaps and exclusions of a key carry its part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from service.clinical.recordparts import FINDING_VALUESETS, IMAGING_VALUESETS, LAB_VALUESETS, RecordPart

__all__ = ["PREFETCH_KEYS", "RECORD_PARTS", "REQUIRED_KEYS", "build_prefetch_templates"]

REQUIRED_KEYS = frozenset({"patient", "conditions"})
# A page large enough for a long record (a few hundred Conditions), so that the page
# cap (MSCC_FHIR__MAX_PAGES) is rarely met: a server's default page is often 20, and
# recent results come first thanks to _sort.
_PAGE = 500

CodeLookup = Callable[[str], Iterable[tuple[str, str]]]


def _code_parameter(valuesets: Iterable[str], codes_of: CodeLookup) -> str:
    pairs = sorted({pair for valueset in valuesets for pair in codes_of(valueset)})
    return ",".join(f"{system}|{code}" for system, code in pairs)


def build_prefetch_templates(codes_of: CodeLookup) -> dict[str, str]:
    """Key → template; ``codes_of(valueset_id)`` yields ``(system, code)`` pairs (empty if absent)."""
    patient = "patient={{context.patientId}}"
    labs = _code_parameter(LAB_VALUESETS, codes_of)
    findings = _code_parameter(FINDING_VALUESETS, codes_of)
    imaging = _code_parameter(IMAGING_VALUESETS, codes_of)
    return {
        "patient": "Patient/{{context.patientId}}",
        "conditions": f"Condition?{patient}&_count={_PAGE}",
        "labs": f"Observation?{patient}&code={labs}&_sort=-date&_count={_PAGE}",
        "findings": f"Observation?{patient}&code={findings}&_sort=-date&_count={_PAGE}",
        "imagingOrders": f"ServiceRequest?{patient}&code={imaging}&_sort=-authored&_count={_PAGE}",
        "imagingStudies": f"ImagingStudy?{patient}&_sort=-started&_count={_PAGE}",
        "imagingReports": f"DiagnosticReport?{patient}&code={imaging}&_sort=-date&_count={_PAGE}",
        "imagingProcedures": f"Procedure?{patient}&code={imaging}&_sort=-date&_count={_PAGE}",
    }


#: Every prefetch key, in template order (the keys do not depend on the codes).
PREFETCH_KEYS: tuple[str, ...] = tuple(build_prefetch_templates(lambda _valueset: ()))
#: The part of the record each prefetch key fetches (the rules and cards name the part, never the key).
RECORD_PARTS: dict[str, RecordPart] = {
    "patient": RecordPart.DEMOGRAPHICS,
    "conditions": RecordPart.CONDITIONS,
    "labs": RecordPart.LAB_RESULTS,
    "findings": RecordPart.OBSERVED_FINDINGS,
    "imagingOrders": RecordPart.IMAGING_ORDERS,
    "imagingStudies": RecordPart.IMAGING_STUDIES,
    "imagingReports": RecordPart.IMAGING_REPORTS,
    "imagingProcedures": RecordPart.IMAGING_PROCEDURES,
}

"""The screening service's prefetch templates, inside the spec's recommended subset.

Only ``patient`` and ``conditions`` are required: without an age and a cancer history
no rule can be decided. Every other key improves the answer but is optional; when it
cannot be read the cards say so instead of the hook failing.
Code lists come from the value sets, so the queries ask for exactly what the rules read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = [
    "FINDING_VALUESETS",
    "IMAGING_VALUESETS",
    "LAB_VALUESETS",
    "PREFETCH_KEYS",
    "REQUIRED_KEYS",
    "build_prefetch_templates",
]

#: Labs, scores, body weight, smoking status and pack-years.
LAB_VALUESETS = (
    "calcium-total-mass",
    "calcium-total-molar",
    "calcium-corrected",
    "albumin",
    "pain-severity",
    "body-weight",
    "smoking-status-code",
    "smoking-pack-years",
)
#: Symptoms and signs that some EHRs record as Observations rather than Conditions.
FINDING_VALUESETS = (
    "mscc-neuro-signs",
    "radicular-pain",
    "spinal-pain-cervical",
    "spinal-pain-thoracic",
    "spinal-pain-lumbar",
    "spinal-pain-unspecified",
    "pain-feature-night",
    "pancoast-signs",
    "haemoptysis",
    # Symptoms IG (STU 1) shape: the code says "Symptom" or "Symptom absent", the value names it.
    "symptom-observation",
    "symptom-absent-observation",
)
#: Spine and chest imaging: orders, studies, reports and procedures suppress or reword cards (R9).
IMAGING_VALUESETS = ("mri-spine-whole", "mri-spine-region", "ct-spine", "chest-imaging", "mri-brachial-plexus")
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

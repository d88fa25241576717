"""Which patient a resource of a Bulk FHIR export belongs to: one function, :func:`patient_of`.

The hook is handed one patient's data; an export holds everyone's, so each resource must
be assigned to its patient before the screener sees it. The rule is deliberately small
and in one place, so that it can later follow the shared integrity rules of the hook path:

* a ``Patient`` belongs to itself (its ``id``);
* any other resource to the Patient its ``subject``, else its ``patient``, refers to:
  ``Patient/{id}``, an absolute URL ending in ``/Patient/{id}`` (a ``/_history/{v}``
  suffix allowed), or ``urn:uuid:{id}`` (exporters that write transaction-style ids,
  e.g. Synthea, give the Patient that uuid as its id);
* anything else (a Group subject, an identifier-only reference, no reference at all) has
  no patient: the caller counts and reports it, it is never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PATIENT_REFERENCE_ELEMENTS", "patient_of"]

#: The elements that name a resource's patient, in the order they are tried.
PATIENT_REFERENCE_ELEMENTS = ("subject", "patient")
# FHIR id: 1-64 of [A-Za-z0-9-.]
_ID = r"[A-Za-z0-9\-.]{1,64}"
_PATIENT_REFERENCE = re.compile(rf"^(?:.*/)?Patient/(?P<id>{_ID})(?:/_history/[^/]+)?$")
_URN_UUID = re.compile(
    r"^urn:uuid:(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_BARE_ID = re.compile(rf"^{_ID}$")


def patient_of(resource: Mapping[str, object]) -> str | None:
    """The logical id of the Patient ``resource`` belongs to, or ``None`` when it names none."""
    if resource.get("resourceType") == "Patient":
        own = resource.get("id")
        return own if isinstance(own, str) and _BARE_ID.match(own) else None
    for element in PATIENT_REFERENCE_ELEMENTS:
        value = resource.get(element)
        reference = value.get("reference") if isinstance(value, Mapping) else None
        if not isinstance(reference, str):
            continue
        match = _PATIENT_REFERENCE.match(reference) or _URN_UUID.match(reference)
        if match is not None:
            return match.group("id")
    return None

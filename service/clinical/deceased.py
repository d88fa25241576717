"""Is the patient dead at hook time? Then no screening card is shown (patient-integrity.md).

``Patient.deceasedBoolean`` true, or a ``Patient.deceasedDateTime`` whose earliest possible
instant is not after the hook time. A date of death that cannot be read, or that lies in
the future, does not stop screening: hiding an urgent card from a living patient is the
worse error, and the audit keeps the record's own words (it was screened).
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.clinical.timing import parse_time
from service.fhir.record import Resource

__all__ = ["is_deceased"]


def is_deceased(patient: Resource | None, at: datetime) -> bool:
    """Whether ``patient`` (the context patient's own Patient resource) had died by ``at``."""
    if patient is None:
        return False
    if patient.get("deceasedBoolean") is True:
        return True
    died = parse_time(patient.get("deceasedDateTime"), at.tzinfo or UTC)
    return died is not None and died.start <= at

"""Is the patient dead at hook time? Then no screening card is shown (patient-integrity.md).

``Patient.deceasedBoolean`` true, or a ``Patient.deceasedDateTime`` whose earliest possible
instant is not after the hook time. A date of death that cannot be read, or that lies in
the future, does not stop screening: hiding an urgent card from a living patient is the
worse error, and the audit keeps the record's own words (it was screened). "Read" means
valid R4B: ``20200101``, ``2020-W01`` or digits of another script are not a FHIR
dateTime, though a lenient parser would take them for one and withhold every card.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from fhir.resources.R4B.fhirtypes import DateTimeType
from pydantic import TypeAdapter, ValidationError

from service.clinical.timing import fix_missing_offsets, parse_time
from service.fhir.record import Resource

__all__ = ["is_deceased"]


def is_deceased(patient: Resource | None, at: datetime) -> bool:
    """Whether ``patient`` (the context patient's own Patient resource) had died by ``at``."""
    if patient is None:
        return False
    if patient.get("deceasedBoolean") is True:
        return True
    raw = patient.get("deceasedDateTime")
    if raw is None:
        return False
    try:
        # Offset-less times are read as UTC, as everywhere (docs/clinical/data-quality.md).
        value = _date_time().validate_python(fix_missing_offsets(raw)[0])
    except ValidationError:
        return False
    died = parse_time(value, at.tzinfo or UTC)
    return died is not None and died.start <= at


@cache
def _date_time() -> TypeAdapter[Any]:
    return TypeAdapter(DateTimeType)

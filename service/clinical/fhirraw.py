"""Reading helpers shared by the FHIR readers: raw codings, validation, times.

:class:`ReadContext` is one hook call's reading state: the value-set index, the hook
time and zone, and the notes. Validation happens only through :meth:`ReadContext.validate`,
which reads an offset-less dateTime as UTC (with a note) and reports a failure by
resource type and place, never by value.

Only what the readers use is validated (:class:`~service.clinical.elements.ReadElements`):
the elements they read, each with its R4B type, and what R4B requires of the resource as
a whole. An error inside an element no rule reads (an encounter reference, a reference
range, an extension) does not drop the resource: it cannot change an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from service.clinical.elements import ElementError, ReadElements, RecurringValues, ValidElements
from service.clinical.notes import Notes
from service.clinical.patientdata import Concept
from service.clinical.timing import TimeSpan, parse_time
from service.clinical.valuesets import Terminology

__all__ = [
    "McodeKind",
    "ReadContext",
    "codings",
    "mcode_kind",
    "status_code",
    "validation_reason",
]

McodeKind = Literal["primary", "secondary"]
_MCODE_PROFILES: dict[str, McodeKind] = {
    "mcode-primary-cancer-condition": "primary",
    "mcode-secondary-cancer-condition": "secondary",
}
_SAFE_LOC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_REPAIRED = "date-time without UTC offset read as UTC"
_NO_GROUPS: frozenset[str] = frozenset()
_NO_MATCH: tuple[frozenset[str], None] = (_NO_GROUPS, None)


def codings(concept: object) -> Iterable[tuple[str, str, object]]:
    """``(system, code, display)`` of a raw CodeableConcept, skipping malformed codings."""
    if not isinstance(concept, dict):
        return
    items = concept.get("coding")
    if not isinstance(items, list):
        return
    for coding in items:
        if isinstance(coding, dict):
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                yield system, code, coding.get("display")


def status_code(concept: Any) -> str | None:
    """The first code of a validated CodeableConcept (clinicalStatus, verificationStatus)."""
    if concept is None:
        return None
    for coding in concept.coding or ():
        if coding.code:
            return str(coding.code)
    return None


def mcode_kind(resource: dict[str, Any]) -> McodeKind | None:
    """Whether ``meta.profile`` names mCODE's Primary or SecondaryCancerCondition (any version)."""
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    if not isinstance(profiles, list):
        return None
    for profile in profiles:
        if isinstance(profile, str):
            name = profile.split("|", 1)[0].rsplit("/", 1)[-1]
            if name in _MCODE_PROFILES:
                return _MCODE_PROFILES[name]
    return None


def validation_reason(error: Exception, element: str | None = None) -> str:
    """Where validation failed, without any input value (it may be PHI).

    ``element``: the element that was validated on its own, named as its place would be
    within the resource.
    """
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return type(error).__name__
    places = []
    for detail in errors()[:2]:
        # Field names and list positions only: a key that does not look like a FHIR
        # element name could be data, and stays out of the note.
        parts = (*element.split("."), *detail.get("loc", ())) if element else detail.get("loc", ())
        loc = ".".join(str(part) for part in parts if isinstance(part, int) or _SAFE_LOC.match(str(part)))
        places.append(f"{loc or 'resource'}: {detail.get('type', 'invalid')}")
    return "; ".join(places)


def _safe_loc(element: str | None) -> str:
    return element if element is not None and _SAFE_LOC.match(element) else "resource"


class ReadContext:
    """Terminology, hook time and notes for one hook call's reading.

    ``recurring``: the screener's cache of validated recurring values, if it keeps one.
    """

    def __init__(self, terminology: Terminology, at: datetime, recurring: RecurringValues | None = None) -> None:
        if at.tzinfo is None:
            raise ValueError("the hook time must be time-zone aware")
        self.terms = terminology
        self._recurring = recurring
        self._groups_of = terminology.groups_of
        self._codes = terminology.codes
        self.at = at
        self.zone = at.tzinfo
        self.notes = Notes()

    def match(self, concepts: Iterable[object]) -> tuple[frozenset[str], Concept | None]:
        """Value-set ids of every coding (one index look-up each) and the first matching coding."""
        groups: frozenset[str] = _NO_GROUPS
        first: Concept | None = None
        for concept in concepts:
            found, matched = self.match_one(concept)
            if matched is not None:
                groups |= found
                first = first or matched
        return groups, first

    def match_one(self, concept: object) -> tuple[frozenset[str], Concept | None]:
        """:meth:`match` for one CodeableConcept.

        It runs on every resource of the record, so it is written out: no generator, no
        new set until a second coding matches.
        """
        if not isinstance(concept, dict):
            return _NO_MATCH
        items = concept.get("coding")
        if not isinstance(items, list):
            return _NO_MATCH
        groups_of, known = self._groups_of, self._codes
        groups = _NO_GROUPS
        first: Concept | None = None
        for coding in items:
            if not isinstance(coding, dict):
                continue
            # Most codings of a record are in no value set: the code alone says so, one
            # set look-up before the system is read or a (system, code) key is built.
            code = coding.get("code")
            if not isinstance(code, str) or code not in known:
                continue
            system = coding.get("system")
            if isinstance(system, str):
                found = groups_of(system, code)
                if found:
                    if first is None:
                        first = self.concept(system, code, coding.get("display"), concept)
                        groups = found
                    else:
                        groups = groups | found
        return groups, first

    def concept(self, system: str, code: str, display: object, concept: object) -> Concept:
        """The coding with the display the record gave it, else the value set's, else the text."""
        text = concept.get("text") if isinstance(concept, dict) else None
        shown = display if isinstance(display, str) and display.strip() else None
        shown = shown or self.terms.display_of(system, code) or (text if isinstance(text, str) else None)
        return Concept(system, code, shown or f"{system}|{code}")

    def validate(self, elements: ReadElements, resource: dict[str, Any]) -> ValidElements | None:
        """The validated ``elements`` of ``resource``, or ``None`` with a note when they are not valid R4B."""
        kind = elements.resource_type
        try:
            valid, repaired = elements.validate(resource, self._recurring)
        except ElementError as error:
            reason = (
                validation_reason(error.cause, error.element)
                if error.cause is not None
                else f"{_safe_loc(error.element)}: {error.kind}"
            )
            self.notes.add(f"{kind} skipped: not valid FHIR R4B ({reason})")
            return None
        if repaired:
            self.notes.add(f"{kind}: {_REPAIRED}")
        return valid

    def time(self, value: object) -> TimeSpan | None:
        return parse_time(value, self.zone) if value is not None else None

    def span(self, moment: object, period: Any) -> TimeSpan | None:
        """A dateTime, else a Period as the span from its start to its end."""
        if moment is not None:
            return self.time(moment)
        if period is None:
            return None
        start, end = self.time(period.start), self.time(period.end)
        if start and end:
            return TimeSpan(start.start, max(end.end, start.end), start.precision)
        return start or end

    def effective(self, model: Any) -> TimeSpan | None:
        """Observation.effective[x]: dateTime, instant, Period or Timing."""
        span = self.span(model.effectiveDateTime or model.effectiveInstant, model.effectivePeriod)
        return span or self._timing(model.effectiveTiming)

    def _timing(self, timing: Any) -> TimeSpan | None:
        """A Timing as the span from its first to its last event, else its repeat bounds."""
        if timing is None:
            return None
        events = sorted(
            (span for span in (self.time(event) for event in timing.event or ()) if span is not None),
            key=lambda span: span.start,
        )
        if events:
            return TimeSpan(events[0].start, max(span.end for span in events), events[0].precision)
        bounds = timing.repeat.boundsPeriod if timing.repeat is not None else None
        return self.span(None, bounds)

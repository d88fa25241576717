"""Select, validate and read FHIR resources into snapshot items.

Selection is cheap and runs on every resource: ``resourceType`` plus one value-set index
look-up per coding. Validation (``fhir.resources`` R4B) runs only on what was selected,
and only on the elements read (:class:`~service.clinical.elements.ReadElements`).
Statuses are applied here, once, for every rule:

* Condition: ``verificationStatus`` refuted or entered-in-error never counts; every
  ``clinicalStatus`` is kept (a resolved lung cancer is still a past cancer), rules decide.
* Observation: only ``final``, ``amended`` and ``corrected`` results count; so does a
  ``preliminary`` sign or symptom when the policy says so (it is marked preliminary). A
  finding recorded as absent never counts: ``valueBoolean`` false, a coded value meaning
  absent or negative, a negative interpretation, a ``dataAbsentReason`` without a value,
  or the Symptoms IG's "Symptom absent" code. A finding whose ``focus`` is not the
  patient is about someone else. A finding may sit in a ``component`` or in a
  ``contained`` Observation (a panel's ``hasMember``): each is read as its own finding.
* Any resource with a ``modifierExtension`` is not read: it changes the meaning of the
  resource in a way the service cannot know (docs/clinical/data-quality.md).
* Imaging: see :mod:`service.clinical.fhirimaging`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from service.clinical.bodysites import body_site_class
from service.clinical.deferred import DeferredResults, may_be_since, raw_when
from service.clinical.elements import VALIDATION_ERRORS, ReadElements, RecurringValues
from service.clinical.fhirimaging import IMAGING_TYPES, read_imaging
from service.clinical.fhirraw import ReadContext, codings, mcode_kind, status_code
from service.clinical.notes import Notes
from service.clinical.patientdata import Concept, Finding, ImagingEvent, Measurement, SmokingStatus, SourceRef
from service.clinical.selection import Selection
from service.clinical.timing import TimeSpan
from service.clinical.units import Measure, reported_unit
from service.clinical.valuesets import Terminology

__all__ = [
    "PACK_YEARS_GROUP",
    "READ_TYPES",
    "SMOKING_CODE_GROUP",
    "Reader",
]

#: The resource types the reader reads; every other type never reaches a rule.
READ_TYPES = frozenset({"Patient", "Condition", "Observation", *IMAGING_TYPES})

SMOKING_CODE_GROUP = "smoking-status-code"
PACK_YEARS_GROUP = "smoking-pack-years"
#: What a pack-years count above 0 says: the person has ever smoked (docs/clinical/decision-table.md#derived-facts).
_EVER_SMOKED = frozenset({"smoking-status-ever"})
_EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_COUNTED_OBSERVATION = frozenset({"final", "amended", "corrected"})
_PRELIMINARY = "preliminary"
#: Symptoms IG (STU 1) Observation codes: the symptom is the value, present or absent.
SYMPTOM_GROUP = "symptom-observation"
SYMPTOM_ABSENT_GROUP = "symptom-absent-observation"
#: A coded value or an interpretation that records the finding named by the code as absent.
ABSENT_VALUE_GROUP = "finding-absent-value"
NEGATIVE_INTERPRETATION_GROUP = "finding-negative-interpretation"
#: Groups that qualify an Observation rather than name a finding.
_QUALIFIER_GROUPS = frozenset({SYMPTOM_GROUP, SYMPTOM_ABSENT_GROUP, ABSENT_VALUE_GROUP, NEGATIVE_INTERPRETATION_GROUP})
_NO_GROUPS: frozenset[str] = frozenset()
# What the readers below take from each type; only these elements (and the required
# ones) are validated. Codes and meta.profile are read raw, and validated too; of meta only
# the profile is read.
_CONDITION = ReadElements(
    Condition,
    (
        "id",
        "meta.profile",
        "clinicalStatus",
        "verificationStatus",
        "code",
        "bodySite",
        "onset[x]",
        "abatement[x]",
        "recordedDate",
    ),
)
# What every Observation reader reads; of a result's Quantity also the value and its unit
# (unit, or UCUM system and code).
_OBSERVED = ("id", "status", "code", "effective[x]", "issued", "value[x]")
_OBSERVATION = ReadElements(
    Observation,
    (*_OBSERVED, "valueQuantity.value", "valueQuantity.unit", "valueQuantity.system", "valueQuantity.code"),
)
# A sign or symptom: also whose it is (focus) and whether it was found (interpretation,
# dataAbsentReason, the components that may each name a finding).
_FINDING = ReadElements(Observation, (*_OBSERVED, "focus", "interpretation", "dataAbsentReason", "component"))
# Patient.birthDate's own R4B type: validating a Patient that holds only it checks nothing more.
# The rules read nothing else of the Patient. A US Core or Synthea Patient carries dozens
# of extensions (race, ethnicity, birth place): validating them cost more than the rest of
# a 100-resource screening, and a broken one would hide the age.
_PATIENT = ReadElements(Patient, ("birthDate",))


class Reader:
    """Accumulates snapshot items from raw resources; one instance per hook call.

    ``selections``: the measured facts' declarations (:mod:`service.clinical.selection`);
    an Observation in one of their value sets is a numeric result, of which only those
    a selection can choose are validated and only those it chooses are kept
    (:mod:`service.clinical.deferred`): :attr:`measurements` is complete once
    :meth:`finish` has run. ``measurement_horizon`` and ``imaging_horizon``: results and
    imaging older than every window that reads them cannot change a decision, so they
    are not validated. ``every_result``: validate every numeric result in the horizon
    (the same measurements, every defect in the notes). ``recurring``: where
    validated CodeableConcepts and Quantities are kept across hook calls
    (:class:`~service.clinical.elements.RecurringValues`). ``names_patient``: whether a
    finding's raw ``focus`` reference names the patient, read as the hook reads a subject
    (:meth:`service.fhir.integrity.PatientReferences.names`); without it, a finding with a
    focus is never the patient's. ``preliminary_findings``: whether a
    preliminary sign or symptom counts (:class:`ClinicalPolicy`). ``skip``: resources
    (by ``id()``) not to read, older copies of one read elsewhere
    (:func:`service.clinical.versions.superseded`).
    """

    def __init__(
        self,
        terminology: Terminology,
        at: datetime,
        selections: Sequence[Selection],
        *,
        measurement_horizon: timedelta | None = None,
        imaging_horizon: timedelta | None = None,
        recurring: RecurringValues | None = None,
        every_result: bool = False,
        names_patient: Callable[[object], bool] | None = None,
        preliminary_findings: bool = True,
        skip: frozenset[int] = frozenset(),
    ) -> None:
        self._context = ReadContext(terminology, at, recurring)
        # Without the hook's reading of references, a focus names no one.
        self._names_the_patient: Callable[[object], bool] = names_patient or (lambda reference: False)
        self._finding_statuses = _COUNTED_OBSERVATION | {_PRELIMINARY} if preliminary_findings else _COUNTED_OBSERVATION
        #: ``id()`` of resources not to read: older copies of a resource read elsewhere
        self._skip = skip
        self._measurement_since = at - measurement_horizon if measurement_horizon else None
        self._imaging_since = at - imaging_horizon if imaging_horizon else None
        self._results = DeferredResults(selections, at, self._read_measurement, every=every_result)
        self._measured_groups = self._results.groups
        #: the quantities results are compared in, with their value sets, in declared order
        self._measures = tuple(
            (selection.groups, selection.measure) for selection in selections if selection.measure is not None
        )
        self._position = 0
        #: the first Patient read of each id (see :meth:`patient`)
        self._patients: dict[str, dict[str, Any]] = {}
        self.findings: list[Finding] = []
        self.measurements: list[Measurement] = []
        self.smoking: list[SmokingStatus] = []
        self.imaging: list[ImagingEvent] = []
        # One reader per resource type, looked up once per resource; a draft order is never
        # the patient's Patient.
        both: dict[str, Callable[[dict[str, Any]], None]] = {
            "Condition": self._condition,
            "Observation": self._observation,
        }
        self._readers = {**both, "Patient": self._patient, **dict.fromkeys(IMAGING_TYPES, self._imaging)}
        self._draft_readers = {**both, **dict.fromkeys(IMAGING_TYPES, self._draft_imaging)}

    @property
    def notes(self) -> Notes:
        return self._context.notes

    def finish(self) -> None:
        """Choose the numeric results (:mod:`service.clinical.deferred`), once every resource is read."""
        self.measurements = self._results.results()

    def read_all(self, resources: Iterable[object], *, draft: bool) -> None:
        """Select and read raw resources (``draft``: the hook's draft orders); never raises on malformed input."""
        self._read(resources, self._draft_readers if draft else self._readers)

    def _read(self, resources: Iterable[object], readers: dict[str, Callable[[dict[str, Any]], None]]) -> None:
        skip = self._skip
        for resource in resources:
            self._position += 1
            if not isinstance(resource, dict) or (skip and id(resource) in skip):
                continue
            kind = resource.get("resourceType")
            read = readers.get(kind) if isinstance(kind, str) else None
            if read is not None and resource.get("modifierExtension"):
                # A modifier changes what the resource means ("not", "planned", "family
                # history"): one the service does not know could invert it, so it is not read.
                self.notes.add(f"{kind} skipped: modifierExtension not understood")
            elif read is not None:
                try:
                    read(resource)
                except VALIDATION_ERRORS as exc:
                    # Data that is not valid R4B, met outside ReadContext.validate (which notes it
                    # itself): skipped like an invalid resource. Any other exception is a bug in
                    # the reader and propagates: it must not pass for "unreadable data".
                    self.notes.add(f"{kind} skipped: unreadable ({type(exc).__name__})")
            if "contained" in resource:
                self._contained(resource["contained"], readers)

    def _contained(self, contained: object, readers: dict[str, Callable[[dict[str, Any]], None]]) -> None:
        """Observations and Conditions held inside another resource (a panel's ``hasMember``, a report's result).

        A contained resource has no id of its own outside its container: it is read
        without one, so a card cites it but a suggestion never references it. Nor does it
        hold resources of its own (FHIR forbids it): what it might hold is not read.
        """
        if not isinstance(contained, list):
            return
        self._read(
            (
                {key: value for key, value in inner.items() if key not in ("id", "contained")}
                for inner in contained
                if isinstance(inner, dict) and inner.get("resourceType") in ("Observation", "Condition")
            ),
            readers,
        )

    def _patient(self, resource: dict[str, Any]) -> None:
        # Found on the main pass rather than by a pass of its own: see patient(). An id
        # that is not a string names no patient (and a list could not be a key).
        ident = resource.get("id")
        if isinstance(ident, str):
            self._patients.setdefault(ident, resource)

    def patient(self, patient_id: str) -> dict[str, Any] | None:
        """The Patient read whose id is ``patient_id``; never another person's (patient-integrity.md)."""
        return self._patients.get(patient_id)

    def birth_date(self, patient: dict[str, Any]) -> TimeSpan | None:
        """Patient.birthDate, the only element of the Patient that is read (and validated)."""
        if "birthDate" not in patient:
            return None
        model = self._context.validate(_PATIENT, patient)
        return self._context.time(model.birthDate) if model is not None else None

    # -- Condition -------------------------------------------------------------------

    def _condition(self, resource: dict[str, Any]) -> None:
        context = self._context
        groups, concept = context.match_one(resource.get("code"))
        mcode = mcode_kind(resource)
        if not groups and mcode is None:
            return
        model = context.validate(_CONDITION, resource)
        if model is None or status_code(model.verificationStatus) in _EXCLUDED_VERIFICATION:
            return
        sites = frozenset(
            site
            for body_site in model.bodySite or ()
            for coding in body_site.coding or ()
            if coding.system and coding.code and (site := body_site_class(coding.system, coding.code))
        )
        self.findings.append(
            Finding(
                source=SourceRef("Condition", model.id),
                concept=concept or self._any_concept(resource.get("code")),
                groups=groups,
                onset=context.span(model.onsetDateTime, model.onsetPeriod),
                recorded=context.time(model.recordedDate),
                abated=context.span(model.abatementDateTime, model.abatementPeriod),
                clinical_status=status_code(model.clinicalStatus),
                mcode=mcode,
                body_sites=sites,
            )
        )

    def _any_concept(self, code: object) -> Concept:
        # An mCODE cancer condition whose code is in no value set: cite its own coding.
        for system, value, display in codings(code):
            return self._context.concept(system, value, display, code)
        text = code.get("text") if isinstance(code, dict) else None
        return Concept("", "", text if isinstance(text, str) and text else "cancer condition (uncoded)")

    # -- Observation -----------------------------------------------------------------

    def _observation(self, resource: dict[str, Any]) -> None:
        # A matched code always has its concept; "concept is None" means no match.
        groups, concept = self._context.match_one(resource.get("code"))
        if concept is None or not groups.isdisjoint(_QUALIFIER_GROUPS):
            if SYMPTOM_ABSENT_GROUP in groups:
                return  # Symptoms IG: the symptom in the value was recorded as absent
            # A finding recorded as Observation.value ("Symptom" = Cough) counts too.
            if "valueCodeableConcept" in resource:
                groups, concept = self._context.match_one(resource["valueCodeableConcept"])
                groups -= _QUALIFIER_GROUPS
                if concept is not None and groups:
                    self._observed_finding(resource, groups, concept, value_is_finding=True)
            if "component" in resource:
                self._components(resource)
        elif SMOKING_CODE_GROUP in groups:
            self._smoking(resource)
        elif PACK_YEARS_GROUP in groups:
            self._pack_years(resource, concept)
        elif groups.isdisjoint(self._measured_groups):
            self._observed_finding(resource, groups, concept)
        else:
            if _status(resource) not in _COUNTED_OBSERVATION:
                return
            # The raw time ranks the result too: it is read once, here.
            zone = self._context.zone
            when = raw_when(resource, zone)
            since = self._measurement_since
            if since is not None and (when.end < since if when else not may_be_since(resource, since, zone)):
                return
            self._results.offer(self._position, resource, groups, concept, when)

    def _counted(self, resource: dict[str, Any]) -> Any | None:
        if _status(resource) not in _COUNTED_OBSERVATION:
            return None
        return self._context.validate(_OBSERVATION, resource)

    def _observed_finding(
        self, resource: dict[str, Any], groups: frozenset[str], concept: Concept, *, value_is_finding: bool = False
    ) -> None:
        model = self._finding_model(resource)
        if model is None or self._recorded_absent(resource, value_is_finding=value_is_finding):
            return
        self.findings.append(self._finding(model, groups, concept))

    def _finding_model(self, resource: dict[str, Any]) -> Any | None:
        """The validated Observation of a sign or symptom, when its status and focus let it count."""
        if _status(resource) not in self._finding_statuses:
            return None
        model = self._context.validate(_FINDING, resource)
        if model is None:
            return None
        if model.focus and not all(map(self._names_the_patient, resource["focus"])):
            # Observation.focus: the finding is about a fetus, a donor, a family member, or
            # names no one it can be tied to (docs/clinical/data-quality.md#4-modifiers-and-focus).
            self.notes.add("Observation skipped: its focus is not the patient")
            return None
        return model

    def _finding(self, model: Any, groups: frozenset[str], concept: Concept) -> Finding:
        return Finding(
            source=SourceRef("Observation", model.id),
            concept=concept,
            groups=groups,
            onset=self._context.effective(model),
            recorded=self._context.time(model.issued),
            preliminary=model.status == _PRELIMINARY,
        )

    def _recorded_absent(self, element: dict[str, Any], *, value_is_finding: bool) -> bool:
        """Whether an Observation (or one of its components) records its finding as absent or unknown.

        ``value_is_finding``: the finding is the coded value itself (a Symptoms IG
        Observation), so the value cannot also say "absent".
        """
        if element.get("valueBoolean") is False:
            return True
        if not value_is_finding and ABSENT_VALUE_GROUP in self._groups(element.get("valueCodeableConcept")):
            return True
        interpretations = element.get("interpretation")
        if isinstance(interpretations, list) and any(
            NEGATIVE_INTERPRETATION_GROUP in self._groups(item) for item in interpretations
        ):
            return True
        # No value and a reason it is missing: the sign was not established either way.
        return "dataAbsentReason" in element and not any(key.startswith("value") for key in element)

    def _groups(self, concept: object) -> frozenset[str]:
        return self._context.match_one(concept)[0] if concept is not None else _NO_GROUPS

    def _components(self, resource: dict[str, Any]) -> None:
        """Signs and symptoms recorded as components of one Observation (an examination panel)."""
        components = resource.get("component")
        if not isinstance(components, list):
            return
        found = [
            (component, groups - _QUALIFIER_GROUPS, concept)
            for component in components
            if isinstance(component, dict)
            for groups, concept in (self._context.match_one(component.get("code")),)
            if concept is not None and groups - _QUALIFIER_GROUPS
        ]
        if not found:
            return
        model = self._finding_model(resource)
        if model is None:
            return
        for component, groups, concept in found:
            if component.get("modifierExtension"):
                self.notes.add("Observation component skipped: modifierExtension not understood")
            elif not self._recorded_absent(component, value_is_finding=False):
                self.findings.append(self._finding(model, groups, concept))

    def _read_measurement(
        self, resource: dict[str, Any], groups: frozenset[str], concept: Concept
    ) -> Measurement | None:
        # A result held back by DeferredResults is read after read_all() returned: it is
        # guarded here as read_all() guards the others.
        try:
            return self._measurement(resource, groups, concept)
        except VALIDATION_ERRORS as exc:
            self.notes.add(f"Observation skipped: unreadable ({type(exc).__name__})")
            return None

    def _measurement(self, resource: dict[str, Any], groups: frozenset[str], concept: Concept) -> Measurement | None:
        model = self._counted(resource)
        if model is None:
            return None
        when = self._context.effective(model) or self._context.time(model.issued)
        if when is None:
            self.notes.add("Observation skipped: result without effective time")
            return None
        quantity = model.valueQuantity
        if quantity is not None and quantity.value is not None:
            value, unit = Decimal(quantity.value), reported_unit(quantity.code, quantity.unit, quantity.system)
        elif model.valueInteger is not None:
            value, unit = Decimal(model.valueInteger), None
        else:
            self.notes.add("Observation skipped: result without a numeric value")
            return None
        checked = self._checked_unit(groups, value, unit)
        if checked is False:
            return None
        return Measurement(SourceRef("Observation", model.id), concept, groups, when, value, checked)

    def _checked_unit(self, groups: frozenset[str], value: Decimal, unit: str | None) -> str | Literal[False] | None:
        """The unit to read a result in when a selection compares it in one; ``False`` when it cannot be read."""
        measure = _measure_of(self._measures, groups)
        if measure is None:
            return unit
        kind = measure.kind
        if unit is None:
            unit = measure.customary(groups, value)
            if unit is None:
                self.notes.add(f"Observation skipped: {kind} without unit")
                return False
            self.notes.add(f"Observation: {kind} result without unit read as {unit}")
        if measure.convert(value, unit) is None:
            self.notes.add(f"Observation skipped: {kind} unit not recognised")
            return False
        return unit

    def _smoking(self, resource: dict[str, Any]) -> None:
        model = self._counted(resource)
        if model is None:
            return
        raw_answer = resource.get("valueCodeableConcept")
        answer_groups, answer = self._context.match_one(raw_answer)
        if answer is None:
            answer = next((self._context.concept(*coding, raw_answer) for coding in codings(raw_answer)), None)
        self.smoking.append(
            SmokingStatus(SourceRef("Observation", model.id), self._context.effective(model), answer, answer_groups)
        )

    def _pack_years(self, resource: dict[str, Any], concept: Concept) -> None:
        # US Core records pack-years as a Quantity; more than 0 is a smoking history,
        # whenever it was recorded. 0 says nothing either way: "never" has its own answer code.
        model = self._counted(resource)
        if model is None:
            return
        quantity = model.valueQuantity
        value = quantity.value if quantity is not None else model.valueInteger
        if value is None or value <= 0:
            return
        answer = Concept(concept.system, concept.code, f"{value:g} pack-years")
        self.smoking.append(
            SmokingStatus(SourceRef("Observation", model.id), self._context.effective(model), answer, _EVER_SMOKED)
        )

    # -- imaging ---------------------------------------------------------------------

    def _imaging(self, resource: dict[str, Any]) -> None:
        self._imaging_event(read_imaging(self._context, resource, draft=False))

    def _draft_imaging(self, resource: dict[str, Any]) -> None:
        self._imaging_event(read_imaging(self._context, resource, draft=True))

    def _imaging_event(self, event: ImagingEvent | None) -> None:
        if event is None:
            return
        if self._imaging_since is not None and event.when is not None and event.when.end < self._imaging_since:
            return
        self.imaging.append(event)


def _status(resource: dict[str, Any]) -> str | None:
    """The raw ``status`` when it is a string: any other JSON (a list, an object) is no status, not a crash."""
    status = resource.get("status")
    return status if isinstance(status, str) else None


def _measure_of(measures: tuple[tuple[frozenset[str], Measure], ...], groups: frozenset[str]) -> Measure | None:
    """The quantity the first selection reading ``groups`` compares in, if any."""
    return next((measure for wanted, measure in measures if not wanted.isdisjoint(groups)), None)

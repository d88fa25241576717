"""Validate the elements of a resource that a reader uses, each with its own R4B type.

A reader reads a few top-level elements of a resource: an Observation's status, code,
time and value. Those, and only those, are validated, each with the ``fhir.resources``
R4B type of its field; what the R4B model checks of the resource as a whole is checked
here too, from the same model's field metadata:

* a key that is no element of the type is refused (the models forbid extra keys);
* an element R4B requires (``Condition.subject``, ``Observation.code``, a ``status``
  whose value may also be given by its ``_status`` extension) must be present; one that
  no reader reads is only required to be present, not validated: an error inside an
  element no rule reads cannot change an answer;
* a choice element ``[x]`` may have one type at most (and one at least when required);
* a list of complex values may not hold a null.

A reader that reads some parts of a complex element names them (``"meta.profile"``,
``"valueQuantity.value"``): the element must then be a JSON object, and only those parts
of it are validated, each with its own type. That also skips the model machinery that
validating a whole Quantity runs, which cost more than its four parts.

Validating each element with its type instead of the whole model with only those
elements gives the same answer (a property test compares the two) and skips the model's
own pass over all of its fields (about 60 for an Observation), which cost as much as
the elements themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import UnionType
from typing import Any, Protocol, Union, cast, get_args, get_origin

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.fhirtypes import CodeableConceptType, DateTimeType, DateType, InstantType, QuantityType
from fhir.resources.R4B.resource import Resource as FhirResource
from fhir_core.utils import is_list_type, is_primitive_type
from pydantic import TypeAdapter, ValidationError

from service.clinical.timevalidator import TimeKind, TimeValidator
from service.clinical.timing import fix_missing_offsets
from service.errors import MsccError

__all__ = ["VALIDATION_ERRORS", "ElementError", "ReadElements", "RecurringValues", "ValidElements", "Validator"]

_RECURRING_TYPES = (CodeableConceptType, QuantityType)


class Validator(Protocol):
    """What validates one element's value: a pydantic ``TypeAdapter`` or its ``SchemaValidator``."""

    def validate_python(self, input: Any, /) -> Any: ...


_TIME_KINDS: dict[object, TimeKind] = {DateType: "date", DateTimeType: "dateTime", InstantType: "instant"}


def _validator(annotation: object) -> Validator:
    # The adapter's own SchemaValidator: TypeAdapter.validate_python only forwards to it,
    # and the extra Python call ran for every element of every resource read.
    validator: Validator = TypeAdapter(cast(Any, annotation)).validator
    # A single time, or an optional one, reads its common forms itself (service.clinical.timevalidator);
    # a list of times is left to its own validator.
    single = (annotation, *(get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()))
    kind = next((_TIME_KINDS[arg] for arg in single if arg in _TIME_KINDS), None)
    return TimeValidator(kind, validator) if kind is not None else validator


class ElementError(MsccError, ValueError):
    """A resource is not valid R4B in what is read or required.

    ``element`` names the top-level element at fault (``None``: the resource as a
    whole); ``cause`` is the pydantic error of that element, if any.
    """

    def __init__(self, element: str | None, kind: str, cause: Exception | None = None) -> None:
        super().__init__(f"{element or 'resource'}: {kind}")
        self.element = element
        self.kind = kind
        self.cause = cause


#: What data that is not valid R4B raises, and nothing else: pydantic's ValidationError
#: and :class:`ElementError`. Any other exception while validating or reading is a bug in
#: the reader, not "unreadable data": it propagates (a 500, logged by the app's handler).
VALIDATION_ERRORS = (ValidationError, ElementError)


class ValidElements:
    """The validated elements of one resource, read as attributes by their R4B field names.

    Each :class:`ReadElements` makes a subclass that names the elements its reader
    declared: one the resource does not have reads as ``None``; one not declared raises
    ``AttributeError``, so that a reader cannot silently read what was never validated.
    The values live in the instance's ``__dict__``, so reading one is a plain attribute
    look-up.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        # Reached only for a name that is neither a value nor a declared element.
        raise AttributeError(name)


class RecurringValues:
    """Validated values that recur from patient to patient, by their JSON text.

    Shared by the hook calls of one screener. Terminology recurs: the LOINC coding of a
    serum calcium, the SNOMED coding of a backache and a Condition's clinicalStatus
    "active" are the same JSON for every patient; so do most quantities (a 0-10 pain
    score has eleven values, a calcium a few hundred). Validating either (a
    fhir.resources model per Coding or Quantity, each checked field by field) cost more
    than the rest of reading a resource. A value is validated the first time its JSON is
    seen; the same JSON later gets the same validated value, which readers only read.
    Only CodeableConcepts, Quantities (whole, or the parts read) and meta.profile are
    kept: ids and times differ from resource to resource and are validated every time.
    Bounded: past ``capacity`` the oldest entry goes first, so a caller sending endless
    distinct values costs memory for ``capacity`` entries at most (each well under a
    kilobyte of JSON).
    """

    def __init__(self, capacity: int = 8192) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._validated: dict[tuple[Validator, bytes], Any] = {}

    def __len__(self) -> int:
        return len(self._validated)

    def copy(self) -> RecurringValues:
        """A new cache holding what this one holds now (the validated values are shared)."""
        duplicate = RecurringValues(self._capacity)
        duplicate._validated = dict(self._validated)
        return duplicate

    def validate(self, adapter: Validator, value: object) -> Any:
        """``adapter.validate_python(value)``, once per distinct JSON value and adapter; errors are not kept."""
        try:
            text = orjson.dumps(value)
        except orjson.JSONEncodeError:  # not JSON (e.g. an integer beyond 64 bits): not cached
            return adapter.validate_python(value)
        # The same JSON may be valid for one type and not another (a list of concepts):
        # the adapter is part of the key.
        key = (adapter, text)
        validated = self._validated
        if key in validated:
            return validated[key]
        result = adapter.validate_python(value)
        if len(validated) >= self._capacity:
            validated.pop(next(iter(validated)), None)
        validated[key] = result
        return result


def _recurs(annotation: object) -> bool:
    """Whether a field's type is a CodeableConcept or a Quantity, optional or in a list."""
    return annotation in _RECURRING_TYPES or any(_recurs(arg) for arg in get_args(annotation))


def _part_adapter(model: type[FhirResource], parent: str, part: str) -> Validator:
    """The R4B type of ``parent.part``, ``parent`` being a complex element of ``model``."""
    field = model.model_fields.get(parent)
    type_name = (
        next((arg.__name__ for arg in (field.annotation, *get_args(field.annotation)) if isinstance(arg, type)), "")
        if field is not None
        else ""
    )
    inner = get_fhir_model_class(type_name[:-4]) if type_name.endswith("Type") else None
    if inner is None or part not in inner.model_fields:
        raise ValueError(f"{model.__name__} has no element {parent}.{part}")
    return _validator(inner.model_fields[part].annotation)


def _checked(adapter: Validator, value: object, recurring: RecurringValues | None) -> tuple[Any, bool]:
    """``value`` validated (through ``recurring`` when given), and whether an offset-less time was read as UTC.

    fhir.resources refuses date-times without an offset, which some EHR feeds send: a
    value that fails is validated once more with those read as UTC. Raises the first
    error when that does not help.
    """
    try:
        return (recurring.validate(adapter, value) if recurring is not None else adapter.validate_python(value)), False
    except VALIDATION_ERRORS as error:
        fixed, changed = fix_missing_offsets(value)
        if not changed:
            raise
        try:
            return adapter.validate_python(fixed), True
        except VALIDATION_ERRORS:
            raise error from None


def _validate_parts(field: _Field, value: object, recurring: RecurringValues | None) -> tuple[Any, bool]:
    """The read parts of a complex element, validated; the element must be a JSON object."""
    if value is None:
        return None, False
    if not isinstance(value, dict):
        raise ElementError(field.alias, "model_type")
    adapters, view = field.parts or ({}, ValidElements)
    validated: dict[str, Any] = {}
    repaired = False
    for part, adapter in adapters.items():
        if part in value:
            try:
                # The parts read (profile URLs, units, values) recur like terminology.
                validated[part], fixed = _checked(adapter, value[part], recurring)
            except VALIDATION_ERRORS as error:
                raise ElementError(f"{field.alias}.{part}", "invalid", error) from None
            repaired = repaired or fixed
    return view(validated), repaired


class _Field:
    """One top-level element: its R4B type and what the model checks of it as a whole."""

    __slots__ = (
        "adapter",
        "alias",
        "choice",
        "complex_list",
        "extension",
        "name",
        "parts",
        "recurring",
        "required",
    )

    def __init__(
        self, name: str, alias: str, adapter: Validator | None, *, complex_list: bool, recurring: bool
    ) -> None:
        self.name = name
        self.alias = alias
        #: ``None``: required but not read, so only its presence is checked
        self.adapter = adapter
        self.complex_list = complex_list
        #: a CodeableConcept or Quantity (or a list of them): validated through RecurringValues
        self.recurring = recurring
        #: a complex element of which only some parts are read (and validated): their
        #: types by alias, and the class they are read through (each part an attribute)
        self.parts: tuple[dict[str, Validator], type[ValidElements]] | None = None
        self.choice: str | None = None
        self.required = False
        #: the ``_name`` field whose extension may stand in for a required primitive
        self.extension: str | None = None


class ReadElements:
    """The part of a resource type that is validated: what a reader reads, plus what R4B requires.

    ``reads`` names top-level elements as FHIR spells them. A choice element counts whole
    (``"value[x]"``, or any one of its types), so that two of its types at once are still
    refused; primitive extensions (``_status``) are validated with their element.
    """

    def __init__(self, model: type[FhirResource], reads: Iterable[str]) -> None:
        fields = model.model_fields
        alias_of = {name: field.alias or name for name, field in fields.items()}
        extra = {
            name: field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            for name, field in fields.items()
        }
        choices: dict[str, set[str]] = {}
        for name, info in extra.items():
            if isinstance(info.get("one_of_many"), str):
                choices.setdefault(str(info["one_of_many"]), set()).add(name)
        by_alias = {alias: name for name, alias in alias_of.items()}
        read: set[str] = set()
        parts: dict[str, dict[str, Validator]] = {}
        for element in reads:
            if "." in element:
                parent, part = element.split(".", 1)
                parts.setdefault(by_alias.get(parent, parent), {})[part] = _part_adapter(model, parent, part)
                read.add(by_alias[parent])
                continue
            choice = (
                element[:-3] if element.endswith("[x]") else extra.get(by_alias.get(element, ""), {}).get("one_of_many")
            )
            if isinstance(choice, str) and choice in choices:
                read |= choices[choice]
            elif element in by_alias:
                read.add(by_alias[element])
            else:
                raise ValueError(f"{model.__name__} has no element {element!r}")
        read |= {f"{name}__ext" for name in read if f"{name}__ext" in fields}
        required = {
            name
            for name, field in fields.items()
            if field.is_required() or extra[name].get("element_required") or extra[name].get("one_of_many_required")
        }

        self._fields: dict[str, _Field] = {}
        for name in read | required:
            field = fields[name]
            adapter = _validator(field.annotation) if name in read else None
            entry = _Field(
                name,
                alias_of[name],
                adapter,
                complex_list=is_list_type(field) and not is_primitive_type(field),
                recurring=_recurs(field.annotation),
            )
            if name in parts:
                view = type(f"{alias_of[name]}Parts", (ValidElements,), dict.fromkeys(sorted(parts[name])))
                entry.parts = (parts[name], view)
            choice = extra[name].get("one_of_many")
            entry.choice = choice if isinstance(choice, str) else None
            entry.required = name in required and entry.choice is None
            if extra[name].get("element_required") and f"{name}__ext" in fields:
                entry.extension = f"{name}__ext"
            self._fields[name] = entry
        self._required_choices = frozenset(
            str(extra[name]["one_of_many"]) for name in required if extra[name].get("one_of_many_required")
        )
        self._required = tuple(field for field in self._fields.values() if field.required)
        self._choices = tuple(field for field in self._fields.values() if field.choice is not None)
        # A key is either an element of the type (by alias, or by field name, as the
        # models accept both) or refused; elements neither read nor required are skipped.
        self._key_to_field: dict[str, str | None] = {"resourceType": None}
        for name, alias in alias_of.items():
            kept = name if name in self._fields else None
            self._key_to_field[alias] = kept
            self._key_to_field.setdefault(name, kept)
        self.model = model
        self.resource_type = model.get_resource_type()
        #: field names a reader may read (every read element, absent or not)
        self.declared = frozenset(read)
        self._valid: type[ValidElements] = type(
            f"{model.__name__}Elements", (ValidElements,), dict.fromkeys(sorted(self.declared))
        )
        #: the top-level keys (FHIR spelling) that are validated or required
        self.kept = frozenset({"resourceType", *(alias_of[name] for name in self._fields)})

    def validate(
        self, resource: dict[str, Any], recurring: RecurringValues | None = None
    ) -> tuple[ValidElements, bool]:
        """The validated elements, and whether a dateTime without an offset was read as UTC.

        Raises :class:`ElementError` when the resource is not valid R4B in what is read
        or required. fhir.resources refuses date-times without an offset, which some EHR
        feeds send: an element that fails is validated once more with those read as UTC.
        ``recurring``: where CodeableConcepts and Quantities already validated are kept.
        """
        if resource.get("resourceType") != self.resource_type:
            raise ElementError("resourceType", "wrong_resource_type")
        key_to_field, fields = self._key_to_field, self._fields
        values: dict[str, Any] = {}
        repaired = False
        for key, value in resource.items():
            if key not in key_to_field:
                raise ElementError(key, "extra_forbidden")
            name = key_to_field[key]
            if name is None or name in values:
                continue
            field = fields[name]
            if field.complex_list and isinstance(value, list) and None in value:
                raise ElementError(field.alias, "list_type")
            if field.adapter is None:
                values[name] = value
                continue
            try:
                if field.parts is not None:
                    values[name], fixed = _validate_parts(field, value, recurring)
                else:
                    values[name], fixed = _checked(field.adapter, value, recurring if field.recurring else None)
            except ElementError:
                raise
            except VALIDATION_ERRORS as error:
                raise ElementError(field.alias, "invalid", error) from None
            repaired = repaired or fixed
        self._check_whole(values)
        return self._valid(values), repaired

    def _check_whole(self, values: dict[str, Any]) -> None:
        """What the model checks after its fields: required elements and choices."""
        for field in self._required:
            if values.get(field.name) is not None:
                continue
            if field.extension is None:
                raise ElementError(field.alias, "missing")
            extension = values.get(field.extension)
            if extension is None or not getattr(extension, "extension", None):
                raise ElementError(field.alias, "model_field_validation.missing")
        chosen: set[str | None] = set()
        for field in self._choices:
            if values.get(field.name) is not None:
                if field.choice in chosen:
                    raise ElementError(None, "value_error")
                chosen.add(field.choice)
        if not self._required_choices <= chosen:
            raise ElementError(None, "value_error")

    def of(self, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` without the elements that are neither read nor required (as the model would see it)."""
        kept, known = self.kept, self._key_to_field
        return {key: value for key, value in resource.items() if key in kept or key not in known}

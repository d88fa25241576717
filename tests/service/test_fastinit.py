"""fast_init builds every class that uses it exactly as the dataclass's own __init__ would."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import FrozenInstanceError, InitVar, dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

import pytest

import service
from service.clinical.timing import TimeSpan
from service.fastinit import fast_init

# Alembic runs these scripts itself, inside its migration context: they are not importable modules.
_NOT_MODULES = "service.store.migrations"


def _classes_using_fast_init() -> list[type]:
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(service.__path__, "service."):
        if module_info.name.startswith(_NOT_MODULES):
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and getattr(value.__dict__.get("__init__"), "__wrapped__", None) is not None
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


CLASSES = _classes_using_fast_init()


def test_the_clinical_value_classes_use_it() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"TimeSpan", "Finding", "Measurement", "Fact", "Plan", "PatientSnapshot", "RuleOutcome"} <= names


def _arguments(init: object) -> list[tuple[str, object]]:
    """A distinct object for every parameter of ``init``, in order; ``()`` where a tuple is iterated at once."""
    parameters = list(inspect.signature(init, follow_wrapped=False).parameters.values())[1:]  # type: ignore[arg-type]
    return [
        (parameter.name, () if parameter.name in ("findings", "gaps", "excluded") else object())
        for parameter in parameters
    ]


def _state(instance: object) -> dict[str, object]:
    return {item.name: getattr(instance, item.name, "<unset>") for item in dataclasses.fields(instance)}  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
def test_same_parameters_and_same_instance_as_the_dataclass_init(cls: type) -> None:
    fast, original = cls.__dict__["__init__"], cls.__dict__["__init__"].__wrapped__
    # follow_wrapped=False: inspect would otherwise read both signatures from the original.
    assert _parameters(inspect.signature(fast, follow_wrapped=False)) == _parameters(inspect.signature(original))
    arguments = _arguments(original)
    calls = [
        ([value for _, value in arguments], {}),  # every argument by position
        ([], dict(arguments)),  # every argument by name
        # the defaults left out: only the parameters without one
        ([], {name: value for name, value in arguments if _required(original, name)}),
    ]
    for positional, named in calls:
        built: object = object.__new__(cls)
        expected: object = object.__new__(cls)
        fast(built, *positional, **named)
        original(expected, *positional, **named)
        assert _state(built) == _state(expected)
    with pytest.raises(FrozenInstanceError):
        setattr(built, dataclasses.fields(cls)[0].name, None)


def _parameters(signature: inspect.Signature) -> list[tuple[str, object, object, str]]:
    """Name, kind, annotation and default of each parameter; each side's own marker for a default factory."""
    return [
        (
            item.name,
            item.kind,
            item.annotation,
            "<factory>" if repr(item.default) == "<factory>" else repr(item.default),
        )
        for item in signature.parameters.values()
    ]


def _required(init: object, name: str) -> bool:
    parameter = inspect.signature(init).parameters[name]  # type: ignore[arg-type]
    return parameter.default is inspect.Parameter.empty


def test_instances_pickle_and_hash_as_before() -> None:
    span = TimeSpan.instant(datetime(2026, 5, 20, 9, 30, tzinfo=UTC))
    assert pickle.loads(pickle.dumps(span)) == span
    assert hash(TimeSpan(span.start, span.end, "instant")) == hash(span)


def test_defaults_factories_and_post_init() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Sample:
        first: int
        second: int = 2
        listed: list[int] = field(default_factory=list)
        derived: int = field(init=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "derived", self.first + self.second)

    one, two = Sample(1), Sample(1)
    assert (one.second, one.listed, one.derived) == (2, [], 3)
    assert one.listed is not two.listed  # a fresh list each time, as default_factory promises
    assert Sample(1, 5, [7]) == Sample(first=1, second=5, listed=[7])
    assert Sample(1, 5).derived == 6
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample(1, third=3)  # type: ignore[call-arg]


def test_a_subclass_sets_its_base_classes_fields_too() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Base:
        first: int

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Derived(Base):
        second: int = 2

    assert (Derived(1).first, Derived(1).second, Derived(1, 3).second) == (1, 2, 3)
    assert Derived(1) == Derived(first=1, second=2)


@pytest.mark.parametrize("kind", ["not frozen", "no slots", "init var", "class var", "keyword only"])
def test_what_it_does_not_support_is_refused_at_definition(kind: str) -> None:
    with pytest.raises(TypeError):
        if kind == "not frozen":

            @fast_init
            @dataclass(slots=True)
            class NotFrozen:
                value: int

        elif kind == "no slots":

            @fast_init
            @dataclass(frozen=True)
            class NoSlots:
                value: int

        elif kind == "init var":

            @fast_init
            @dataclass(frozen=True, slots=True)
            class WithInitVar:
                value: int
                extra: InitVar[int]

        elif kind == "class var":

            @fast_init
            @dataclass(frozen=True, slots=True)
            class WithClassVar:
                value: int
                shared: ClassVar[int] = 1

        else:

            @fast_init
            @dataclass(frozen=True, slots=True)
            class KeywordOnly:
                value: int = field(kw_only=True)

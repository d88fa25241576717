"""A faster ``__init__`` for frozen, slotted dataclasses; the class is otherwise unchanged.

A hook call builds a few hundred small frozen dataclasses (time spans, concepts,
findings, facts, verdicts). On Python 3.11 a frozen dataclass's generated ``__init__``
sets each field with ``object.__setattr__``, which first checks that it is not being
used to bypass an overridden ``__setattr__`` (the frozen class's own, which raises);
that made building a three-field instance cost about three times what the same class
costs unfrozen. :func:`fast_init` replaces that ``__init__`` by one that stores each
field through its slot, which is where ``object.__setattr__`` ends up: the same
parameters, defaults, default factories and ``__post_init__``; the instance is as
frozen as before (assigning to a field still raises), equal, hashable and picklable as
before. The dataclass's own ``__init__`` stays reachable as ``__init__.__wrapped__``; a
test compares the two on every class that uses this.

Only what the clinical classes need is supported: a class with an ``InitVar``, a
``ClassVar`` or a keyword-only field is refused when it is defined, never built differently.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_init"]

_Class = TypeVar("_Class", bound=type)


class _Factory:
    """The default of a parameter whose field has a ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: _Class) -> _Class:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that sets its slots directly."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen, slotted dataclasses with an __init__")
    fields = dataclasses.fields(cls)
    if len(fields) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: fast_init does not support InitVar or ClassVar pseudo-fields")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    parameters: list[str] = []
    body: list[str] = []
    for position, field in enumerate(fields):
        if field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: fast_init does not support keyword-only fields")
        setter, default, factory = f"_set_{position}", f"_default_{position}", f"_factory_{position}"
        # The slot may be a base class's (a dataclass inheriting fields keeps their slots there).
        slot = next(klass.__dict__[field.name] for klass in cls.__mro__ if field.name in klass.__dict__)
        namespace[setter] = slot.__set__
        if field.default is not dataclasses.MISSING:
            namespace[default] = field.default
        if field.default_factory is not dataclasses.MISSING:
            namespace[factory] = field.default_factory
        if not field.init:
            # As the dataclass's own __init__: a default is set, else __post_init__ sets it.
            if default in namespace:
                body.append(f"{setter}(self, {default})")
            elif factory in namespace:
                body.append(f"{setter}(self, {factory}())")
            continue
        name = field.name
        if default in namespace:
            parameters.append(f"{name}={default}")
            body.append(f"{setter}(self, {name})")
        elif factory in namespace:
            parameters.append(f"{name}=_FACTORY")
            body.append(f"{setter}(self, {factory}() if {name} is _FACTORY else {name})")
        else:
            parameters.append(name)
            body.append(f"{setter}(self, {name})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__(self, {', '.join(parameters)}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
    exec(source, namespace)  # noqa: S102 (built above from the class's own field names)
    original = cls.__dict__["__init__"]
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(original.__annotations__)
    init.__wrapped__ = original
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning to a class's __init__)
    return cls

"""Settings for the command line: each problem as one line that names its variable.

An operator who mistypes a setting gets ``MSCC_STORE__PSEUDONYM_KEY: needs at least 32
characters`` and exit code 2, not a pydantic traceback. A line never carries the value
that was given: it may be a secret (a key, a database or Redis URL with its password).

This module is imported by every ``mscc-cds`` invocation, ``--help`` included, so pydantic
and the settings model are imported only when settings are actually loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from service.errors import MsccError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from service.settings import Settings

__all__ = ["ConfigurationError", "load_cli_settings", "settings_problems", "variable_name"]

_PREFIX = "MSCC_"
_DELIMITER = "__"


class ConfigurationError(MsccError):
    """The settings cannot be used; ``problems`` holds one line for the operator per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_cli_settings(**overrides: Any) -> Settings:
    """:func:`service.settings.load_settings`, with problems raised as :class:`ConfigurationError`."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from service.settings import load_settings

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(settings_problems(exc)) from None
    except SettingsError as exc:
        raise ConfigurationError(_undecodable(str(exc))) from None


def variable_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a validation error's location; list positions become ``[n]``."""
    names: list[str] = []
    rest = ""
    for part in loc:
        if isinstance(part, int) or rest:
            rest += f"[{part}]" if isinstance(part, int) else f".{part}"
        else:
            names.append(part.upper())
    return _PREFIX + _DELIMITER.join(names) + rest


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per problem: the variable, then what is expected (never the given value)."""
    lines: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        context = error.get("ctx") or {}
        if error["type"] == "production_refused":
            # Each problem already starts with the variable it is about.
            lines.extend(f"{problem} (MSCC_MODE=production)" for problem in context.get("problems", ()))
            continue
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        loc = tuple(error["loc"])
        lines.append(f"{variable_name(loc) if loc else 'settings'}: {message}")
    return lines


def _undecodable(message: str) -> list[str]:
    """Which variables hold text where JSON is needed (pydantic-settings names only the group)."""
    from service.settings import Settings

    found = [
        f"{name}: expected JSON ({kind}), e.g. {example}; the value given is not JSON"
        for name, kind, example in _json_variables(Settings)
        if (value := os.environ.get(name)) is not None and not _is_json(value)
    ]
    return found or [f"settings: {message} (a value that must be JSON is not JSON)"]


def _is_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_variables(model: type[BaseModel], prefix: str = _PREFIX) -> Iterator[tuple[str, str, str]]:
    """Every variable whose value is parsed as JSON: its name, kind and an example."""
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        variable = prefix + name.upper()
        for kind in _kinds(field.annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield variable, "an object", '{"...": ...}'
                yield from _json_variables(kind, variable + _DELIMITER)
            elif kind in (list, set, tuple, frozenset):
                yield variable, "a list", '["...", "..."]'
            elif kind is dict:
                yield variable, "an object", '{"...": ...}'


def _kinds(annotation: Any) -> Iterator[Any]:
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            yield from _kinds(argument)
    elif origin is not None:
        yield origin
    else:
        yield annotation

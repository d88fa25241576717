"""The configuration reference: one Markdown row per environment variable.

Descriptions come from ``Field(description=...)`` or, failing that, from the ``#:``
comments above each field (the Sphinx convention our settings modules use), so the
table in README.md is generated from the code and a test keeps the two in sync.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from service.settings import Settings

__all__ = ["README_END", "README_START", "render_readme_section", "settings_rows", "settings_table"]

README_START = "<!-- settings-table:start -->"
README_END = "<!-- settings-table:end -->"
_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:")


@cache
def _comment_docs(model: type[BaseModel]) -> dict[str, str]:
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
                continue
            match = _FIELD_LINE.match(line)
            if match and pending:
                docs[match.group(1)] = " ".join(pending)
            if not stripped.startswith("#"):
                pending = []
    return docs


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "*required*"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, Path):
        return "`<install dir>/profiles`" if value.name == "profiles" else f"`{value}`"
    if hasattr(value, "get_secret_value"):
        return "*(secret)*"
    return "`" + repr(value).replace("|", "\\|") + "`" if value not in (None, "", [], {}) else "—"


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{choice}`" for choice in get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = (
        text.replace("typing.", "")
        .replace("pydantic.networks.", "")
        .replace("pydantic.types.", "")
        .replace("pathlib.", "")
    )
    return text.replace("|", "\\|")


def settings_rows(model: type[BaseModel] = Settings, prefix: str = "MSCC_") -> Iterator[tuple[str, str, str, str]]:
    """``(variable, type, default, description)`` for every leaf setting, depth first."""
    docs = _comment_docs(model)
    for name, info in model.model_fields.items():
        annotation = info.annotation
        variable = f"{prefix}{name.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from settings_rows(annotation, f"{variable}__")
            continue
        description = info.description or docs.get(name, "")
        yield variable, _type_name(annotation), _default(info), description


def settings_table() -> str:
    header = "| Variable | Type | Default | Meaning |\n|---|---|---|---|"
    rows = [f"| `{variable}` | {kind} | {default} | {text} |" for variable, kind, default, text in settings_rows()]
    return "\n".join([header, *rows])


def render_readme_section() -> str:
    return f"{README_START}\n{settings_table()}\n{README_END}"


def _write_readme(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    readme.write_text(text[:start] + render_readme_section() + text[end:], encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    if "--write" in sys.argv:
        _write_readme(Path(__file__).resolve().parent.parent / "README.md")
    else:
        sys.stdout.write(settings_table() + "\n")

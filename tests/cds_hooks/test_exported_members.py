"""The package's public surface, and its independence from the service built on it."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import cds_hooks

PACKAGE_DIR = Path(cds_hooks.__file__).resolve().parent
SUBMODULES = sorted(info.name for info in pkgutil.iter_modules([str(PACKAGE_DIR)]))


def _isort_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then CamelCase, then the rest."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_every_submodule_declares_its_public_names() -> None:
    assert {"body", "contexts", "errors", "models", "prefetch", "registry", "router"} <= set(SUBMODULES)
    for name in SUBMODULES:
        module = importlib.import_module(f"cds_hooks.{name}")
        exported = module.__all__
        assert exported == sorted(exported, key=_isort_order), f"cds_hooks.{name}.__all__ is not sorted"
        missing = [member for member in exported if not hasattr(module, member)]
        assert missing == [], f"cds_hooks.{name}.__all__ names undefined members {missing}"


def test_the_package_re_exports_every_public_name_sorted() -> None:
    public = {member for name in SUBMODULES for member in importlib.import_module(f"cds_hooks.{name}").__all__}
    assert sorted(cds_hooks.__all__, key=_isort_order) == cds_hooks.__all__
    assert len(set(cds_hooks.__all__)) == len(cds_hooks.__all__)
    assert set(cds_hooks.__all__) == public
    for member in cds_hooks.__all__:
        assert getattr(cds_hooks, member) is not None


def _imported_top_level_packages(source: Path) -> set[str]:
    packages: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
    return packages


def test_the_protocol_layer_never_imports_the_service() -> None:
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(sources) == len(SUBMODULES) + 1  # plus __init__.py
    offenders = [path.name for path in sources if "service" in _imported_top_level_packages(path)]
    assert offenders == []


def test_the_import_scanner_sees_both_import_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import service.app\nfrom service.fhir import gather\nfrom . import local\n", encoding="utf-8")
    assert _imported_top_level_packages(sample) == {"service"}

"""The clinical layers, enforced: rules know neither the service nor its prefetch keys; the
PlanDefinition generator depends on the rules, not on the service (docs/clinical/README.md).

Imports are checked in a fresh interpreter, where ``sys.modules`` shows everything an import
pulled in, however indirectly.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import service.clinical.rules
from service.prefetch import PREFETCH_KEYS

RULES_DIR = Path(service.clinical.rules.__file__).resolve().parent
RULE_MODULES = [
    "service.clinical.rules",
    *(f"service.clinical.rules.{info.name}" for info in pkgutil.iter_modules([str(RULES_DIR)])),
]
#: the service above the clinical layer: the CDS Service, its prefetch-key table, the app, FHIR I/O
SERVICE_LAYER = ("service.screening", "service.prefetch", "service.app", "service.fhir")

_PROBE = """
import importlib, json, sys
modules, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])
found = {}
for name in modules:
    importlib.import_module(name)
    found[name] = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
print(json.dumps(found))
"""


def _loaded(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """For each of ``modules``, imported in turn in a fresh interpreter: the ``forbidden`` modules loaded so far."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(modules), json.dumps(forbidden)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found: dict[str, list[str]] = json.loads(done.stdout)
    return found


def test_the_rule_modules_are_all_probed() -> None:
    names = {name.rsplit(".", 1)[-1] for name in RULE_MODULES}
    assert {"base", "facts", "gaps", "mscc", "ng12", "suppression"} <= names


def test_importing_a_rule_loads_nothing_of_the_service_layer() -> None:
    found = _loaded(RULE_MODULES, SERVICE_LAYER)
    assert {name: loaded for name, loaded in found.items() if loaded} == {}


def test_the_plandefinition_generator_depends_on_the_rules_not_on_the_service() -> None:
    found = _loaded(["service.clinical.plandefinitions"], ("service.screening", "service.prefetch", "service.app"))
    assert found == {"service.clinical.plandefinitions": []}


def test_the_probe_sees_what_an_import_pulls_in() -> None:
    # The app imports the screening service and the prefetch templates: the probe must say so.
    found = _loaded(["service.app"], SERVICE_LAYER)
    assert {"service.screening", "service.prefetch", "service.fhir.gather"} <= set(found["service.app"])


# -- no prefetch key in a rule ------------------------------------------------------------------


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (node for node in ast.walk(tree) if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef))
    return {
        id(node.body[0].value)
        for node in nodes
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }


def prefetch_keys_named(source: str, keys: tuple[str, ...]) -> list[str]:
    """The string literals of ``source`` (docstrings aside) that name one of ``keys``.

    A literal names a key when it is the key, or holds a camelCase key ("imagingOrders") as a
    word: an English key ("labs", "patient") is also an English word in card texts.
    """
    tree = ast.parse(source)
    skip = _docstrings(tree)
    camel = [re.compile(rf"\b{re.escape(key)}\b") for key in keys if key != key.lower()]
    literals = (
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    )
    return [text for text in literals if text.strip() in keys or any(pattern.search(text) for pattern in camel)]


@pytest.mark.parametrize("path", sorted(RULES_DIR.glob("*.py")), ids=lambda path: path.name)
def test_no_rule_names_a_prefetch_key(path: Path) -> None:
    # Rules name parts of the record (RuleSpec.reads); the service maps its keys to them.
    assert prefetch_keys_named(path.read_text(encoding="utf-8"), PREFETCH_KEYS) == []


def test_the_key_scanner_finds_keys_in_code_not_in_prose() -> None:
    source = (
        '"""Reads labs and the imagingOrders key."""\nX = ("labs",)\nY = {"imagingOrders": 1}\nZ = "ask the patient"\n'
    )
    assert PREFETCH_KEYS[0] == "patient"
    assert prefetch_keys_named(source, PREFETCH_KEYS) == ["labs", "imagingOrders"]

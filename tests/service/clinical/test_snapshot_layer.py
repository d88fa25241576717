"""Layers: the snapshot types and the rules never load the FHIR reader.

The rules read a typed snapshot, the facts and the policy, never FHIR JSON: importing
the snapshot types or any rule module must not load ``fhir.resources``, the reader or its
speed path. Each import runs in a fresh interpreter, so that what another test imported
cannot hide a leak.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import service.clinical.rules

#: what reads FHIR: none of it may load with the snapshot types or a rule
READER_MODULES = (
    "fhir.resources",
    "service.clinical.elements",
    "service.clinical.fhirraw",
    "service.clinical.resource_reader",
    "service.clinical.snapshot_reader",
    "service.clinical.deferred",
)
RULE_MODULES = tuple(
    f"service.clinical.rules.{module.name}" for module in pkgutil.iter_modules(service.clinical.rules.__path__)
)

_PROBE = """
import sys
import {module}
loaded = sorted(name for name in {reader!r} if name in sys.modules)
print("LOADED:", ",".join(loaded))
"""


def _reader_modules_loaded_by(module: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module, reader=READER_MODULES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("LOADED:"), result.stdout
    return [name for name in line.removeprefix("LOADED:").strip().split(",") if name]


@pytest.mark.parametrize(
    "module", ["service.clinical.snapshot", "service.clinical.selection", "service.clinical.rules", *RULE_MODULES]
)
def test_the_snapshot_types_and_the_rules_never_load_the_reader(module: str) -> None:
    assert _reader_modules_loaded_by(module) == []


def test_the_probe_sees_the_reader_when_it_is_loaded() -> None:
    # The probe itself can fail: the snapshot builder does load the reader.
    assert "service.clinical.resource_reader" in _reader_modules_loaded_by("service.clinical.snapshot_reader")


def test_every_rule_module_is_probed() -> None:
    assert {"service.clinical.rules.facts", "service.clinical.rules.mscc"} <= set(RULE_MODULES)

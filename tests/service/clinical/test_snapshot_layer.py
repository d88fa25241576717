"""Layers: the snapshot types and the rules never load the FHIR reader.

The rules read a typed snapshot, the facts and the policy, never FHIR JSON: importing
the snapshot types or any rule module must not load ``fhir.resources``, the reader or its
speed path. Each import runs in a fresh interpreter, so that what another test imported
cannot hide a leak.
"""

from __future__ import annotations

import pkgutil

import pytest

import service.clinical.rules
from tests.imports import loaded_by

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


def _reader_modules_loaded_by(module: str) -> list[str]:
    return loaded_by(f"import {module}", READER_MODULES)


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

"""The PlanDefinitions are valid R4, match the rule registry, and carry the HTI-1 attributes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.plandefinition import PlanDefinition

from service.clinical.outcome import HOOKS
from service.clinical.plandefinitions import (
    HTI1_ATTRIBUTE_URL,
    HTI1_DSI_TYPE_URL,
    build_plandefinitions,
    main,
    render,
)
from service.clinical.rules import RULES, RULES_BY_ID
from service.clinical.valuesets import DEFAULT_PROFILES_DIR
from tests.service.clinical.factories import library

FOLDER = DEFAULT_PROFILES_DIR / "plandefinitions"
FILES = sorted(FOLDER.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data = orjson.loads(path.read_bytes())
    assert isinstance(data, dict)
    return data


def test_one_file_per_rule() -> None:
    assert sorted(path.stem for path in FILES) == sorted(rule.id for rule in RULES)


def test_committed_files_match_the_code() -> None:
    expected = build_plandefinitions(library())
    for path in FILES:
        assert path.read_bytes() == render(expected[path.stem]), f"{path.name} is stale: regenerate it"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_valid_r4_eca_rule(path: Path) -> None:
    data = load(path)
    plan = PlanDefinition.model_validate(data)
    rule = RULES_BY_ID[path.stem]
    assert (plan.id, plan.version, plan.date.isoformat()) == (rule.id, rule.version, rule.date)
    assert plan.type.coding[0].code == "eca-rule"
    assert [artifact.label for artifact in plan.relatedArtifact] == [citation.label for citation in rule.citations]
    action = plan.action[0]
    assert [(trigger.type, trigger.name) for trigger in action.trigger] == [("named-event", hook) for hook in HOOKS]
    assert action.condition[0].expression.description == rule.description
    urls = {library().get(vs_id).url for vs_id in rule.valuesets if vs_id in library().ids}
    used = {flt.valueSet for requirement in action.input or [] for flt in requirement.codeFilter or []}
    assert used == urls


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_hti1_source_attributes(path: Path) -> None:
    data = load(path)
    rule = RULES_BY_ID[path.stem]
    attributes = {}
    for extension in data["extension"]:
        if extension["url"] == HTI1_ATTRIBUTE_URL:
            parts = {
                part["url"]: next(v for k, v in part.items() if k.startswith("value"))
                for part in extension["extension"]
            }
            attributes[parts["number"]] = (parts["attribute"], parts["value"])
    assert sorted(attributes) == list(range(1, 14))
    assert all(name and value for name, value in attributes.values())
    assert attributes[11][1].startswith("Yes") is rule.uses_birth_date
    assert attributes[13][1].startswith("Yes") is bool(rule.health_status_inputs)
    assert all(attributes[number][1] == "No" for number in (5, 6, 7, 8, 9, 10, 12))
    assert rule.version in attributes[4][1]
    dsi = next(extension for extension in data["extension"] if extension["url"] == HTI1_DSI_TYPE_URL)
    assert {"url": "type", "valueCode": "evidence-based"} in dsi["extension"]


def test_age_rules_require_the_birth_date() -> None:
    assert {rule.id for rule in RULES if rule.uses_birth_date} == {"R6a", "R6b", "R6c", "R8"}
    plans = build_plandefinitions(library())
    assert {"type": "Patient", "mustSupport": ["birthDate"]} in plans["R6a"]["action"][0]["input"]


def test_check_and_write_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    shutil.copytree(DEFAULT_PROFILES_DIR / "valuesets", tmp_path / "valuesets")
    assert main(["--profiles-dir", str(tmp_path)]) == 1
    assert "stale PlanDefinitions" in capsys.readouterr().err
    assert main(["--write", "--profiles-dir", str(tmp_path)]) == 0
    (tmp_path / "plandefinitions" / "R99.json").write_text("{}")
    assert main(["--profiles-dir", str(tmp_path)]) == 1
    assert main(["--write", "--profiles-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "plandefinitions" / "R99.json").exists()
    assert main(["--profiles-dir", str(tmp_path)]) == 0

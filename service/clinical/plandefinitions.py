"""One FHIR PlanDefinition (ECA rule) per rule, generated from the rule registry.

``profiles/plandefinitions/<rule-id>.json`` is what hospitals review: identity and version,
the condition in words and as logic over the derived facts, the citations
(``relatedArtifact``), the hooks that trigger it, the value sets it reads
(``action.input``), and the ONC HTI-1 source attributes of an evidence-based decision
support intervention, §170.315(b)(11)(iv)(A)(1)-(13) (engineering.md §3.5). Everything
comes from the same :class:`~service.clinical.rules.base.RuleSpec` the engine runs, and a
test regenerates the files in memory and compares, so code and artifacts cannot drift::

    python -m service.clinical.plandefinitions --write     # regenerate
    python -m service.clinical.plandefinitions             # check (exit 1 if stale)

After writing, regenerate the knowledge manifest (``python -m service.clinical.knowledge --write``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from service.clinical.artifactcli import CheckResult, check_or_write
from service.clinical.cards import RULES_SYSTEM
from service.clinical.outcome import HOOKS
from service.clinical.recordparts import IMAGING_VALUESETS, LAB_VALUESETS
from service.clinical.rules import RULES, RuleSpec
from service.clinical.valuesets import DEFAULT_PROFILES_DIR, ValueSetLibrary

__all__ = [
    "HTI1_ATTRIBUTE_URL",
    "HTI1_DSI_TYPE_URL",
    "build_plandefinition",
    "build_plandefinitions",
    "main",
    "render",
    "write_plandefinitions",
]

CANONICAL_BASE = "https://fhir.mscc-cds.org/PlanDefinition"
HTI1_ATTRIBUTE_URL = "https://fhir.mscc-cds.org/StructureDefinition/hti1-source-attribute"
HTI1_DSI_TYPE_URL = "https://fhir.mscc-cds.org/StructureDefinition/hti1-dsi-type"
PUBLISHER = "mscc-cds"
DEVELOPER = (
    "mscc-cds project team: rules translated from the cited guidelines (docs/clinical/decision-table.md#rules); "
    "thresholds marked team policy await clinician sign-off"
)
FUNDING = "Not stated: to be completed by the publisher before clinical release"
_PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
# ECA action priority from the card's indicator (PlanDefinition.action.priority).
_PRIORITY = {"critical": "stat", "warning": "urgent", "info": "routine"}
_IMAGING_TYPES = (("ServiceRequest", "code"), ("ImagingStudy", "procedureCode"), ("DiagnosticReport", "code"))


def _name(rule: RuleSpec) -> str:
    words = re.findall(r"[A-Za-z0-9]+", rule.title)
    return rule.id.upper() + "".join(word[:1].upper() + word[1:] for word in words)


def _attribute(number: int, name: str, value: str) -> dict[str, Any]:
    return {
        "url": HTI1_ATTRIBUTE_URL,
        "extension": [
            {"url": "number", "valueInteger": number},
            {"url": "attribute", "valueString": name},
            {"url": "value", "valueString": value},
        ],
    }


def _source_attributes(rule: RuleSpec) -> list[dict[str, Any]]:
    """The 13 evidence-based DSI source attributes, §170.315(b)(11)(iv)(A)(1)-(13)."""
    citations = "; ".join(citation.text for citation in rule.citations)
    sources = ", ".join(citation.label for citation in rule.citations)
    no = "No"
    age = "Yes: age at the hook time from Patient.birthDate (40 and over, NICE NG12)" if rule.uses_birth_date else no
    health = f"Yes: {', '.join(rule.health_status_inputs)}" if rule.health_status_inputs else no
    attributes = (
        ("Bibliographic citation of the intervention", citations),
        ("Developer of the intervention", DEVELOPER),
        ("Funding source of the intervention's technical implementation", FUNDING),
        (
            "Release and revision dates of the intervention and its reference sources",
            f"Rule {rule.id} version {rule.version}, {rule.date}. Sources: {sources}.",
        ),
        ("Use of race as an expressed input", no),
        ("Use of ethnicity as an expressed input", no),
        ("Use of language as an expressed input", no),
        ("Use of sexual orientation as an expressed input", no),
        ("Use of gender identity as an expressed input", no),
        ("Use of sex as an expressed input", no),
        ("Use of date of birth (age) as an expressed input", age),
        ("Use of social determinants of health data as an expressed input", no),
        ("Use of health status assessments data as an expressed input", health),
    )
    return [_attribute(number, name, value) for number, (name, value) in enumerate(attributes, start=1)]


def _dsi_type() -> dict[str, Any]:
    return {
        "url": HTI1_DSI_TYPE_URL,
        "extension": [
            {"url": "type", "valueCode": "evidence-based"},
            {
                "url": "note",
                "valueString": (
                    "Deterministic rules, not derived from training data: not a predictive DSI (45 CFR 170.102), so "
                    "the predictive source attributes of §170.315(b)(11)(iv)(B) do not apply. This changes if a "
                    "model-based score is ever added."
                ),
            },
        ],
    }


def _inputs(rule: RuleSpec, valuesets: ValueSetLibrary) -> list[dict[str, Any]]:
    requirements: list[dict[str, Any]] = []
    if rule.uses_birth_date:
        requirements.append({"type": "Patient", "mustSupport": ["birthDate"]})
    for valueset_id in rule.valuesets:
        if valueset_id not in valuesets.ids:
            continue  # no verified codes yet: the fact is never true (profiles/valuesets/README.md)
        url = valuesets.get(valueset_id).url
        types: tuple[tuple[str, str], ...]
        if valueset_id in IMAGING_VALUESETS or valueset_id == "chest-xray":
            types = _IMAGING_TYPES
        elif valueset_id in LAB_VALUESETS:
            types = (("Observation", "code"),)
        else:
            types = (("Condition", "code"), ("Observation", "code"))
        requirements.extend({"type": kind, "codeFilter": [{"path": path, "valueSet": url}]} for kind, path in types)
    return requirements


def build_plandefinition(rule: RuleSpec, valuesets: ValueSetLibrary) -> dict[str, Any]:
    """The PlanDefinition JSON for ``rule`` (FHIR R4)."""
    action: dict[str, Any] = {
        "title": rule.title,
        "description": rule.description,
        "code": [{"coding": [{"system": RULES_SYSTEM, "code": rule.id, "display": rule.title}]}],
        "trigger": [{"type": "named-event", "name": hook} for hook in HOOKS],
        "condition": [
            {
                "kind": "applicability",
                "expression": {"description": rule.description, "language": "text/plain", "expression": rule.logic},
            }
        ],
    }
    if rule.indicator is not None:
        action["priority"] = _PRIORITY[rule.indicator]
    inputs = _inputs(rule, valuesets)
    if inputs:
        action["input"] = inputs
    return {
        "resourceType": "PlanDefinition",
        "id": rule.id,
        "extension": [*_source_attributes(rule), _dsi_type()],
        "url": f"{CANONICAL_BASE}/{rule.id}",
        "identifier": [{"system": RULES_SYSTEM, "value": rule.id}],
        "version": rule.version,
        "name": _name(rule),
        "title": f"{rule.id} {rule.title}",
        "type": {"coding": [{"system": _PLAN_TYPE, "code": "eca-rule", "display": "ECA Rule"}]},
        # draft until a clinician signs off the thresholds (docs/clinical/README.md#clinical-design-of-mscc-cds)
        "status": "draft",
        "date": rule.date,
        "publisher": PUBLISHER,
        "description": rule.description,
        "usage": f"Logic: {rule.logic}. Evidence: {rule.strength}.",
        "author": [{"name": DEVELOPER}],
        "relatedArtifact": [
            {
                "type": "citation",
                "label": citation.label,
                "display": citation.label,
                "citation": citation.text,
                **({"url": citation.url} if citation.url else {}),
            }
            for citation in rule.citations
        ],
        "action": [action],
    }


def build_plandefinitions(valuesets: ValueSetLibrary) -> dict[str, dict[str, Any]]:
    """Every rule's PlanDefinition, by rule id."""
    return {rule.id: build_plandefinition(rule, valuesets) for rule in RULES}


def render(resource: dict[str, Any]) -> bytes:
    """The committed file's bytes: two-space indent, insertion order, final newline."""
    return orjson.dumps(resource, option=orjson.OPT_INDENT_2) + b"\n"


def write_plandefinitions(profiles_dir: Path = DEFAULT_PROFILES_DIR) -> list[Path]:
    """(Re)write ``profiles_dir/plandefinitions``; files of rules that no longer exist are removed."""
    folder = profiles_dir / "plandefinitions"
    folder.mkdir(parents=True, exist_ok=True)
    resources = build_plandefinitions(ValueSetLibrary.load(profiles_dir / "valuesets"))
    written = []
    for rule_id, resource in resources.items():
        path = folder / f"{rule_id}.json"
        path.write_bytes(render(resource))
        written.append(path)
    for stale in set(folder.glob("*.json")) - set(written):
        stale.unlink()
    return written


def _stale(profiles_dir: Path) -> list[str]:
    folder = profiles_dir / "plandefinitions"
    expected = {
        f"{rule_id}.json": render(resource)
        for rule_id, resource in build_plandefinitions(ValueSetLibrary.load(profiles_dir / "valuesets")).items()
    }
    present = {path.name: path.read_bytes() for path in folder.glob("*.json")} if folder.is_dir() else {}
    return sorted(name for name in expected.keys() | present.keys() if expected.get(name) != present.get(name))


def main(argv: Sequence[str] | None = None) -> int:
    return check_or_write(
        argv,
        prog="python -m service.clinical.plandefinitions",
        description="Check or regenerate profiles/plandefinitions from the rule registry.",
        write_help="regenerate the files",
        write=lambda profiles_dir: (
            f"wrote {len(write_plandefinitions(profiles_dir))} PlanDefinitions to {profiles_dir / 'plandefinitions'}"
        ),
        check=_check,
    )


def _check(profiles_dir: Path) -> CheckResult:
    stale = _stale(profiles_dir)
    if stale:
        return False, f"stale PlanDefinitions: {', '.join(stale)}; run with --write"
    return True, "PlanDefinitions match the rule registry"


if __name__ == "__main__":
    raise SystemExit(main())

"""The scenario files of ``profiles/examples``, held to their format, and what tests compare them with.

Each ``NN-slug.json`` is a complete request; its ``extension["org.mscc-cds.scenario"]`` holds the
title, the reference time the service clock must be pinned to, the exact multiset of expected cards and
whether the data is valid FHIR (``sandbox``). The files are parsed by the service's own loader
(:mod:`service.scenarios`, which ``mscc-cds seed`` uses and which is lenient on purpose); this module
adds the strict format check and the views only tests need. Tests anywhere in the tree can reuse it
(pytest puts the repository root on ``sys.path``: ``pythonpath = ["."]``)::

    from tests.scenarios import card_multiset, expected_multiset, load_scenarios

    for scenario in load_scenarios():
        app = create_app(settings, clock=lambda: scenario.reference_time)
        ...  # POST scenario.request, compare card_multiset(cards) with expected_multiset(scenario)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from service.prefetch import PREFETCH_KEYS
from service.scenarios import SCENARIO_EXTENSION, Scenario, ScenarioError
from service.scenarios import load_scenario as parse_scenario
from service.settings import DEFAULT_PROFILES_DIR

__all__ = [
    "RULE_TOPIC_SYSTEM",
    "SCENARIO_DIR",
    "card_multiset",
    "draft_orders",
    "expected_multiset",
    "load_scenario",
    "load_scenarios",
    "prefetched_resources",
    "scenario_number",
    "scenario_paths",
]

SCENARIO_DIR = DEFAULT_PROFILES_DIR / "examples"
#: ``card.source.topic.system``; the topic code is the rule id (DESIGN.md, cards convention).
RULE_TOPIC_SYSTEM = "https://fhir.mscc-cds.org/CodeSystem/mscc-rules"
_INDICATORS = frozenset({"info", "warning", "critical"})
#: Two digits, or three for the blocks of 100 and above handed to parallel work (160-189, ...).
_FILE_NAME = re.compile(r"^(?P<number>\d{2,3})-[a-z0-9]+(?:-[a-z0-9]+)*\.json$")
_ACTION_TYPES = frozenset({"create", "update", "delete"})
_FIELDS = frozenset({"title", "description", "referenceTime", "expectedCards", "sandbox"})
#: Optional: the status when it is not 200 (a 412 expects no card).
_OPTIONAL_FIELDS = frozenset({"expectedStatus"})
_STATUSES = frozenset({200, 412})

CardKey = tuple[str, str]


def card_multiset(cards: Iterable[Mapping[str, Any]]) -> Counter[CardKey]:
    """``(rule id, indicator)`` of each card of a CDS Hooks response, as a multiset."""
    return Counter((card["source"]["topic"]["code"], card["indicator"]) for card in cards)


def expected_multiset(scenario: Scenario) -> Counter[CardKey]:
    """The cards the scenario expects, comparable with :func:`card_multiset`."""
    return Counter((card.rule_id, card.indicator) for card in scenario.expected_cards)


def prefetched_resources(scenario: Scenario) -> Iterator[dict[str, Any]]:
    """Every prefetched resource (the Patient and each Bundle entry), in file order.

    Unlike :meth:`Scenario.resources` (what ``seed`` loads) nothing is merged or skipped,
    so the checks on ids see every resource the file holds.
    """
    for key in PREFETCH_KEYS:
        value = scenario.prefetch.get(key)
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") != "Bundle":
            yield value
            continue
        entries = value.get("entry")
        # The structure scenarios (112-119) send entries that are not lists or hold no resource.
        for entry in entries if isinstance(entries, list) else ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                yield resource


def draft_orders(scenario: Scenario) -> list[dict[str, Any]]:
    """The resources of ``context.draftOrders`` (order-select / order-sign), else empty."""
    bundle = scenario.context.get("draftOrders")
    if not isinstance(bundle, dict):
        return []
    return [entry["resource"] for entry in bundle.get("entry") or () if isinstance(entry.get("resource"), dict)]


def scenario_number(name: str) -> int:
    """The number a scenario file name starts with (``"07-..."`` → 7, ``"160-..."`` → 160)."""
    return int(name.split("-", 1)[0])


def scenario_paths(directory: Path = SCENARIO_DIR) -> list[Path]:
    """The scenario files (``NN-*.json``, ``NNN-*.json``) of ``directory``, in number order."""
    paths = (path for path in directory.glob("[0-9]*-*.json") if path.is_file() and _FILE_NAME.match(path.name))
    return sorted(paths, key=lambda path: scenario_number(path.name))


def _require(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise ScenarioError(f"{path.name}: {problem}")


def _check_expected_cards(raw: Any, path: Path) -> None:
    _require(isinstance(raw, list), path, "expectedCards must be a list (empty for 'no card')")
    for index, item in enumerate(raw):
        _require(isinstance(item, dict), path, f"expectedCards[{index}] must be an object")
        rule_id, indicator = item.get("ruleId"), item.get("indicator")
        _require(isinstance(rule_id, str) and bool(rule_id), path, f"expectedCards[{index}].ruleId must be a string")
        _require(
            indicator in _INDICATORS, path, f"expectedCards[{index}].indicator must be one of {sorted(_INDICATORS)}"
        )
        _require(
            set(item) <= {"ruleId", "indicator", "suggestions"}, path, f"expectedCards[{index}] has unknown fields"
        )
        if "suggestions" in item:
            suggestions = item["suggestions"]
            _require(
                isinstance(suggestions, list)
                and all(
                    isinstance(actions, list) and actions and all(kind in _ACTION_TYPES for kind in actions)
                    for actions in suggestions
                ),
                path,
                f"expectedCards[{index}].suggestions must list each suggestion's action types (create/update/delete)",
            )


def _check_format(request: dict[str, Any], path: Path) -> None:
    """What the lenient loader lets through but the agreed format forbids."""
    extension = request.get("extension")
    if not isinstance(extension, dict):
        raise ScenarioError(f"{path.name}: extension must be an object")
    meta = extension[SCENARIO_EXTENSION]
    _require(isinstance(meta, dict), path, f"extension[{SCENARIO_EXTENSION!r}] must be an object")
    _require(
        _FIELDS <= set(meta) <= _FIELDS | _OPTIONAL_FIELDS,
        path,
        f"scenario fields must be {sorted(_FIELDS)}, optionally {sorted(_OPTIONAL_FIELDS)}",
    )
    status = meta.get("expectedStatus", 200)
    _require(status in _STATUSES, path, f"expectedStatus must be one of {sorted(_STATUSES)}")
    _require(status == 200 or meta["expectedCards"] == [], path, "a scenario expecting an error expects no card")
    for field in ("title", "description", "referenceTime"):
        _require(
            isinstance(meta[field], str) and bool(meta[field].strip()), path, f"{field} must be a non-empty string"
        )
    _require(isinstance(meta["sandbox"], bool), path, "sandbox must be true or false")
    _check_expected_cards(meta["expectedCards"], path)


def load_scenario(path: Path) -> Scenario:
    """Parse one scenario file; raise :class:`ScenarioError` when it breaks the format."""
    _require(_FILE_NAME.match(path.name) is not None, path, "file name must be NN-lowercase-slug.json")
    scenario = parse_scenario(path)
    _check_format(scenario.request, path)
    return scenario


def load_scenarios(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    return [load_scenario(path) for path in scenario_paths(directory)]

"""The scenario files of ``profiles/examples``: CDS Hooks requests that carry their expected cards.

Each ``NN-slug.json`` is a complete request; its ``extension["org.mscc-cds.scenario"]`` holds the
title, the reference time the service clock must be pinned to, the exact multiset of expected cards and
whether the data is valid FHIR (``sandbox``). Tests anywhere in the tree can reuse this loader
(pytest puts the repository root on ``sys.path``: ``pythonpath = ["."]``)::

    from tests.scenarios import load_scenarios

    for scenario in load_scenarios():
        app = create_app(settings, clock=lambda: scenario.reference_time)
        ...  # POST scenario.request, compare card_multiset(cards) with scenario.expected_multiset()
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "EXTENSION_KEY",
    "PREFETCH_KEYS",
    "PROFILES_DIR",
    "RULE_TOPIC_SYSTEM",
    "SCENARIO_DIR",
    "ExpectedCard",
    "Scenario",
    "ScenarioError",
    "card_multiset",
    "load_scenario",
    "load_scenarios",
    "scenario_paths",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILES_DIR = REPO_ROOT / "profiles"
SCENARIO_DIR = PROFILES_DIR / "examples"
EXTENSION_KEY = "org.mscc-cds.scenario"
#: The service's prefetch keys (service/prefetch.py); a scenario may set one to null or omit it on purpose.
PREFETCH_KEYS = (
    "patient",
    "conditions",
    "labs",
    "findings",
    "imagingOrders",
    "imagingStudies",
    "imagingReports",
    "imagingProcedures",
)
#: ``card.source.topic.system``; the topic code is the rule id (DESIGN.md, cards convention).
RULE_TOPIC_SYSTEM = "https://fhir.mscc-cds.org/CodeSystem/mscc-rules"
_INDICATORS = frozenset({"info", "warning", "critical"})
_FILE_NAME = re.compile(r"^(?P<number>\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*\.json$")

CardKey = tuple[str, str]


class ScenarioError(ValueError):
    """A scenario file is not in the agreed format; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class ExpectedCard:
    rule_id: str
    indicator: str


@dataclass(frozen=True)
class Scenario:
    """One scenario file, parsed; ``request`` is the file's JSON, ready to POST as is."""

    path: Path
    request: dict[str, Any]
    title: str
    description: str
    reference_time: datetime
    expected_cards: tuple[ExpectedCard, ...]
    sandbox: bool

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def number(self) -> int:
        return int(self.path.name[:2])

    @property
    def hook(self) -> str:
        return str(self.request["hook"])

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = self.request["context"]
        return context

    @property
    def prefetch(self) -> dict[str, Any]:
        prefetch: dict[str, Any] = self.request.get("prefetch") or {}
        return prefetch

    def expected_multiset(self) -> Counter[CardKey]:
        return Counter((card.rule_id, card.indicator) for card in self.expected_cards)

    def resources(self) -> Iterator[dict[str, Any]]:
        """Every prefetched resource (the Patient and each Bundle entry), in file order."""
        for key in PREFETCH_KEYS:
            value = self.prefetch.get(key)
            if not isinstance(value, dict):
                continue
            if value.get("resourceType") != "Bundle":
                yield value
                continue
            for entry in value.get("entry") or ():
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict):
                    yield resource

    def draft_orders(self) -> list[dict[str, Any]]:
        """The resources of ``context.draftOrders`` (order-select / order-sign), else empty."""
        bundle = self.context.get("draftOrders")
        if not isinstance(bundle, dict):
            return []
        return [entry["resource"] for entry in bundle.get("entry") or () if isinstance(entry.get("resource"), dict)]


def card_multiset(cards: Iterable[Mapping[str, Any]]) -> Counter[CardKey]:
    """``(rule id, indicator)`` of each card of a CDS Hooks response, as a multiset."""
    keys: Counter[CardKey] = Counter()
    for card in cards:
        topic = (card.get("source") or {}).get("topic") or {}
        keys[(str(topic.get("code")), str(card.get("indicator")))] += 1
    return keys


def scenario_paths(directory: Path = SCENARIO_DIR) -> list[Path]:
    """The scenario files (``NN-*.json``) of ``directory``, in number order."""
    return sorted(path for path in directory.glob("[0-9][0-9]-*.json") if path.is_file())


def _require(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise ScenarioError(f"{path.name}: {problem}")


def _expected_cards(raw: Any, path: Path) -> tuple[ExpectedCard, ...]:
    _require(isinstance(raw, list), path, "expectedCards must be a list (empty for 'no card')")
    cards = []
    for index, item in enumerate(raw):
        _require(isinstance(item, dict), path, f"expectedCards[{index}] must be an object")
        rule_id, indicator = item.get("ruleId"), item.get("indicator")
        _require(isinstance(rule_id, str) and bool(rule_id), path, f"expectedCards[{index}].ruleId must be a string")
        _require(
            indicator in _INDICATORS, path, f"expectedCards[{index}].indicator must be one of {sorted(_INDICATORS)}"
        )
        _require(set(item) == {"ruleId", "indicator"}, path, f"expectedCards[{index}] has unknown fields")
        cards.append(ExpectedCard(rule_id=str(rule_id), indicator=str(indicator)))
    return tuple(cards)


def load_scenario(path: Path) -> Scenario:
    """Parse one scenario file; raise :class:`ScenarioError` when it breaks the format."""
    _require(_FILE_NAME.match(path.name) is not None, path, "file name must be NN-lowercase-slug.json")
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path.name}: not JSON ({exc})") from exc
    _require(isinstance(request, dict), path, "the request must be a JSON object")
    extension = request.get("extension")
    _require(isinstance(extension, dict) and EXTENSION_KEY in extension, path, f"extension[{EXTENSION_KEY!r}] missing")
    meta = extension[EXTENSION_KEY]
    _require(isinstance(meta, dict), path, f"extension[{EXTENSION_KEY!r}] must be an object")
    expected_fields = {"title", "description", "referenceTime", "expectedCards", "sandbox"}
    _require(set(meta) == expected_fields, path, f"scenario fields must be exactly {sorted(expected_fields)}")
    for field in ("title", "description", "referenceTime"):
        _require(
            isinstance(meta[field], str) and bool(meta[field].strip()), path, f"{field} must be a non-empty string"
        )
    try:
        reference_time = datetime.fromisoformat(meta["referenceTime"])
    except ValueError as exc:
        raise ScenarioError(f"{path.name}: referenceTime is not an ISO 8601 date-time") from exc
    _require(reference_time.tzinfo is not None, path, "referenceTime needs a UTC offset")
    _require(isinstance(meta["sandbox"], bool), path, "sandbox must be true or false")
    _require(isinstance(request.get("context"), dict), path, "context must be an object")
    return Scenario(
        path=path,
        request=request,
        title=meta["title"],
        description=meta["description"],
        reference_time=reference_time,
        expected_cards=_expected_cards(meta["expectedCards"], path),
        sandbox=meta["sandbox"],
    )


def load_scenarios(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    return [load_scenario(path) for path in scenario_paths(directory)]

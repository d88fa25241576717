"""The example scenarios of ``profiles/examples``: load them, turn them into FHIR transactions.

Each file is a complete CDS Hooks request with full prefetch, and its expectation in
``extension["org.mscc-cds.scenario"]`` (see DESIGN.md). The CLI's ``seed`` loads the
patients of the scenarios marked ``"sandbox": true`` into a FHIR server; with date
shifting, every date moves by the same amount so that the scenario's ``referenceTime``
becomes "now" and the rules' time windows still fire against a live sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from service.errors import MsccError
from service.fhir.bundle import bundle_resources
from service.fhir.record import Resource

__all__ = [
    "SCENARIO_EXTENSION",
    "Scenario",
    "ScenarioCard",
    "ScenarioError",
    "load_scenario",
    "load_scenarios",
    "shift_dates",
    "transaction_bundle",
]

SCENARIO_EXTENSION = "org.mscc-cds.scenario"

# FHIR date / dateTime / instant (R4 "Data Types"): year, year-month, date, or a date
# with a time (seconds, optional fraction, an offset or Z).
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?$")
# Values under these keys are identifiers or codes, even when they look like a date.
_NOT_DATES = frozenset({"id", "reference", "system", "code", "url", "version", "value", "display", "postalCode"})
# A bare year or year-month is only a date under a date element (birthDate, onsetDateTime,
# Period.start, ...): elsewhere "2000" is more likely a number or a code.
_PARTIAL_DATE_KEYS = frozenset({"start", "end", "authoredOn", "started", "issued"})


_SERVER_META = frozenset({"versionId", "lastUpdated", "source"})


class ScenarioError(MsccError, ValueError):
    """A scenario file cannot be used (unreadable, or not in the scenario format)."""


@dataclass(frozen=True, slots=True)
class ScenarioCard:
    rule_id: str
    indicator: str
    #: the action types of each suggestion, e.g. ``(("delete", "create"),)``; ``None``:
    #: not asserted (most scenarios)
    suggestions: tuple[tuple[str, ...], ...] | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One example: the request as written, and what the service should answer."""

    name: str
    request: dict[str, Any]
    title: str
    reference_time: datetime
    expected_cards: tuple[ScenarioCard, ...]
    sandbox: bool
    #: the HTTP status the request as written gets: 200, or 412 when required data is unreadable
    expected_status: int = 200

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = self.request["context"]
        return context

    @property
    def prefetch(self) -> dict[str, Any]:
        """The prefetch as written (empty when the request sends none)."""
        prefetch: dict[str, Any] = self.request.get("prefetch") or {}
        return prefetch

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])

    def resources(self) -> list[Resource]:
        """Every resource of the prefetch, once each (by type and id), in file order."""
        seen: set[tuple[str, str]] = set()
        resources: list[Resource] = []
        for value in self.prefetch.values():
            for resource in bundle_resources(value):
                key = (str(resource.get("resourceType")), str(resource.get("id")))
                if resource.get("resourceType") == "OperationOutcome" or key in seen:
                    continue
                seen.add(key)
                resources.append(resource)
        return resources


def load_scenario(path: Path) -> Scenario:
    """One scenario file; :class:`ScenarioError` when it is unreadable or not a scenario."""
    try:
        request = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ScenarioError(f"{path.name}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(request, dict) or not isinstance(request.get("context"), dict):
        raise ScenarioError(f"{path.name}: not a CDS Hooks request")
    extension = request.get("extension")
    meta = extension.get(SCENARIO_EXTENSION) if isinstance(extension, Mapping) else None
    if not isinstance(meta, Mapping):
        raise ScenarioError(f"{path.name}: no extension {SCENARIO_EXTENSION!r}")
    try:
        reference_time = datetime.fromisoformat(str(meta["referenceTime"]))
        int(meta.get("expectedStatus", 200))
        cards = tuple(
            ScenarioCard(
                rule_id=str(card["ruleId"]),
                indicator=str(card["indicator"]),
                suggestions=(
                    tuple(tuple(str(kind) for kind in actions) for actions in card["suggestions"])
                    if "suggestions" in card
                    else None
                ),
            )
            for card in meta.get("expectedCards") or ()
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"{path.name}: bad scenario extension ({type(exc).__name__}: {exc})") from None
    if reference_time.tzinfo is None:
        raise ScenarioError(f"{path.name}: referenceTime needs a UTC offset")
    if not isinstance(request["context"].get("patientId"), str):
        raise ScenarioError(f"{path.name}: context.patientId missing")
    return Scenario(
        name=path.stem,
        request=request,
        title=str(meta.get("title") or path.stem),
        reference_time=reference_time,
        expected_cards=cards,
        sandbox=bool(meta.get("sandbox", False)),
        expected_status=int(meta.get("expectedStatus", 200)),
    )


def load_scenarios(examples_dir: Path, *, sandbox_only: bool = False) -> list[Scenario]:
    """Every ``*.json`` scenario of ``examples_dir``, sorted by file name."""
    scenarios = [load_scenario(path) for path in sorted(examples_dir.glob("*.json"))]
    return [scenario for scenario in scenarios if scenario.sandbox or not sandbox_only]


def _shift_text(text: str, shift: timedelta, anchor: datetime, key: str) -> str:
    if _DATETIME.match(text):
        moment = datetime.fromisoformat(text)
        moved = moment + shift
        timespec = "milliseconds" if "." in text else ("seconds" if text.count(":") >= 2 else "minutes")
        rendered = moved.isoformat(timespec=timespec)
        return rendered.removesuffix("+00:00") + "Z" if text.endswith("Z") else rendered
    match = _DATE.match(text)
    if match is None:
        return text
    year, month, day = match.groups()
    if day is None and "date" not in key.lower() and key not in _PARTIAL_DATE_KEYS:
        return text
    # A date is moved as if it were at the reference time of day, so that the
    # reference date itself becomes today; partial dates keep their precision.
    start = date(int(year), int(month or 1), int(day or 1))
    moved_day = (datetime.combine(start, anchor.timetz()) + shift).date()
    if day is not None:
        return moved_day.isoformat()
    if month is not None:
        return f"{moved_day.year:04d}-{moved_day.month:02d}"
    return f"{moved_day.year:04d}"


def shift_dates(value: Any, shift: timedelta, anchor: datetime, key: str = "") -> Any:
    """A copy of ``value`` with every FHIR date, dateTime and instant moved by ``shift``.

    ``anchor`` is the scenario's reference time (date-only values are moved as if at its
    time of day). Values under identifier-like keys (``id``, ``code``, ``value``, ...) and
    anything that is not a well-formed date stay as they are.
    """
    if isinstance(value, dict):
        return {name: shift_dates(item, shift, anchor, name) for name, item in value.items()}
    if isinstance(value, list):
        return [shift_dates(item, shift, anchor, key) for item in value]
    if isinstance(value, str) and key not in _NOT_DATES:
        try:
            return _shift_text(value, shift, anchor, key)
        except ValueError:
            return value  # looks like a date but is not one (2026-02-30): leave it alone
    return value


def _entries(resources: list[Resource]) -> Iterator[dict[str, Any]]:
    for resource in resources:
        body = dict(resource)
        # versionId and lastUpdated are the server's to set; profile and tags carry meaning
        # (an mCODE profile is what makes a generic cancer code a primary lung cancer)
        meta = {name: value for name, value in (body.pop("meta", None) or {}).items() if name not in _SERVER_META}
        if meta:
            body["meta"] = meta
        resource_type = body["resourceType"]
        if body.get("id"):
            # PUT with the scenario's ids: references between resources stay valid and
            # seeding twice updates instead of duplicating
            request = {"method": "PUT", "url": f"{resource_type}/{body['id']}"}
        else:
            request = {"method": "POST", "url": resource_type}
        yield {"resource": body, "request": request}


def transaction_bundle(scenario: Scenario, *, now: datetime | None = None) -> dict[str, Any]:
    """A FHIR transaction that creates or updates the scenario's resources.

    With ``now``, every date is shifted by ``now - referenceTime`` (see :func:`shift_dates`).
    """
    resources = scenario.resources()
    if now is not None:
        shift = now - scenario.reference_time
        resources = [shift_dates(resource, shift, scenario.reference_time) for resource in resources]
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(_entries(resources))}

"""Shadow mode: replay the hook's screener over a period and measure what it would have done.

At every time point from ``--from`` to ``--to`` (one ``--step`` apart) every patient of the
export is screened with :func:`screen_patient`, exactly as ``population --at`` does. From
the replays:

* **what was known**: at each time point the screener sees only the resources recorded by
  then (:func:`recorded_at`: recordedDate, issued, authoredOn, ... else the clinical time);
* **alert load**: per rule and week, the *new* cards (a card that was not showing at the
  previous time point); cards already showing at ``--from`` are counted apart, as they
  are not new;
* **lead time**: for patients with a later event, i.e. a cord compression or a spinal
  (bone) metastasis recorded, or a whole-spine MRI done, on or after ``--from`` (codes from
  the value sets ``cord-compression``, ``secondary-bone-malignancy``, ``mri-spine-whole``,
  read by the hook's own reader), the time from the first spinal card (R1, R2, R2b, R7) to
  the first such event (negative: the card came only after it);
* **NICE QS56**: statement 3, of the patients with a new R1 card, the share with a
  whole-spine MRI done within 24 hours; statement 2, the same for R2 within 1 week. A
  replay sees a red flag up to one step late, so an MRI from one step before the card on
  counts.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import orjson

from service.clinical.knowledge import load_knowledge_version
from service.clinical.policy import ClinicalPolicy
from service.clinical.resource_reader import Reader
from service.clinical.rules import RULES_BY_ID
from service.clinical.rules.facts import measured_selections
from service.clinical.rules.suppression import WHOLE_SPINE_MRI
from service.clinical.timing import parse_time
from service.clinical.valuesets import ValueSetLibrary
from service.fhir.integrity import PatientReferences
from service.fhir.record import Resource
from service.population.export import ExportFolder, find_export
from service.population.local import grouped_export
from service.population.patients import PatientResult, screen_patient
from service.population.progress import Progress
from service.population.run import build_screener
from service.population.shadowhtml import render_html
from service.population.tally import Tally
from service.reporting.weeks import monday, weeks_from_to
from service.settings import Settings

__all__ = [
    "EVENT_GROUPS",
    "LEAD_BINS",
    "SPINAL_RULES",
    "LeadTime",
    "QualityMeasure",
    "ShadowReport",
    "patient_events",
    "recorded_at",
    "run_shadow",
]

#: The cards whose lead time is measured: the spine family of the decision table.
SPINAL_RULES = tuple(
    rule_id
    for rule_id, rule in RULES_BY_ID.items()
    if rule.family == RULES_BY_ID["R1"].family and rule.indicator is not None
)
#: Events recorded as findings, by value set.
EVENT_GROUPS = {"cord compression": "cord-compression", "spinal metastasis": "secondary-bone-malignancy"}
MRI_EVENT = "whole-spine MRI"
#: Lead-time bins of the report's plot, in days (lower bound included).
LEAD_BINS = (("0-1 d", 0.0), ("1-7 d", 1.0), ("7-14 d", 7.0), ("14-28 d", 14.0), ("28 d or more", 28.0))


#: When a resource entered the record, by type: the first of these elements that is present.
#: An export holds today's record; a replay at an earlier time must not see what was
#: recorded after it.
_RECORDED_BY = {
    "Condition": ("recordedDate", "onsetDateTime", "onsetPeriod"),
    "Observation": ("issued", "effectiveDateTime", "effectiveInstant", "effectivePeriod"),
    "ServiceRequest": ("authoredOn",),
    "Procedure": ("performedDateTime", "performedPeriod"),
    "DiagnosticReport": ("issued", "effectiveDateTime", "effectivePeriod"),
    "ImagingStudy": ("started",),
}


def recorded_at(resource: Resource, zone: tzinfo) -> datetime | None:
    """When ``resource`` entered the record (see ``_RECORDED_BY``); ``None``: always known (a Patient)."""
    for element in _RECORDED_BY.get(str(resource.get("resourceType")), ()):
        value = resource.get(element)
        if isinstance(value, dict):
            value = value.get("start")
        span = parse_time(value, zone)
        if span is not None:
            return span.start
    return None


def patient_events(library: ValueSetLibrary, resources: list[Resource], at: datetime) -> dict[str, list[datetime]]:
    """When each event happened, by kind, as the hook's reader reads the record (no look-back limit)."""
    # Only findings and imaging are read here: the selections only tell results from findings.
    reader = Reader(library, at, measured_selections(ClinicalPolicy()))
    reader.read_all(resources, draft=False)
    reader.finish()
    events: dict[str, list[datetime]] = {}
    for kind, group in EVENT_GROUPS.items():
        events[kind] = sorted(
            finding.first_time.start
            for finding in reader.findings
            if group in finding.groups and finding.first_time is not None
        )
    events[MRI_EVENT] = sorted(
        event.when.start
        for event in reader.imaging
        if WHOLE_SPINE_MRI in event.groups and event.state == "done" and not event.draft and event.when is not None
    )
    return events


@dataclass(frozen=True, slots=True)
class LeadTime:
    patient_id: str
    event: str
    event_time: datetime
    #: the first spinal card's time point, None when no spinal card showed in the period
    first_card_time: datetime | None
    first_card_rule: str | None
    #: the spinal card was already showing at --from: its real first time is earlier
    showing_at_start: bool

    @property
    def lead_days(self) -> float | None:
        if self.first_card_time is None:
            return None
        return (self.event_time - self.first_card_time).total_seconds() / 86_400

    @property
    def bin(self) -> str:
        days = self.lead_days
        if days is None:
            return "no card"
        if days < 0:
            return "card after event"
        return next(label for label, low in reversed(LEAD_BINS) if days >= low)


@dataclass(slots=True)
class QualityMeasure:
    statement: str
    description: str
    rule: str
    window: timedelta
    denominator: int = 0
    numerator: int = 0

    @property
    def proportion(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def _measures() -> list[QualityMeasure]:
    return [
        QualityMeasure(
            "QS56 statement 3",
            "New R1 card (suspected MSCC): whole-spine MRI done within 24 hours",
            "R1",
            timedelta(hours=24),
        ),
        QualityMeasure(
            "QS56 statement 2",
            "New R2 card (suspected spinal metastases): whole-spine MRI done within 1 week",
            "R2",
            timedelta(days=7),
        ),
    ]


@dataclass(slots=True)
class ShadowReport:
    start: datetime
    end: datetime
    step: timedelta
    times: list[datetime]
    folder: ExportFolder
    knowledge_version: str
    tally: Tally = field(default_factory=Tally)
    #: (week's Monday, rule) -> new cards
    new_cards: Counter[tuple[date, str]] = field(default_factory=Counter)
    #: rule -> cards already showing at the first time point
    at_start: Counter[str] = field(default_factory=Counter)
    lead_times: list[LeadTime] = field(default_factory=list)
    measures: list[QualityMeasure] = field(default_factory=_measures)
    seconds: float = 0.0

    @property
    def weeks(self) -> list[date]:
        return weeks_from_to(self.times[0], self.times[-1])

    @property
    def rules(self) -> list[str]:
        shown = {rule for _, rule in self.new_cards} | set(self.at_start)
        return sorted(shown, key=lambda rule: RULES_BY_ID[rule].rank if rule in RULES_BY_ID else 1_000)

    def lead_summary(self) -> list[dict[str, Any]]:
        rows = []
        for event in (*EVENT_GROUPS, MRI_EVENT):
            items = [item for item in self.lead_times if item.event == event]
            before = [days for item in items if (days := item.lead_days) is not None and days >= 0]
            rows.append(
                {
                    "event": event,
                    "patients": len(items),
                    "card_before_event": len(before),
                    "card_after_event": sum(1 for item in items if (item.lead_days or 0) < 0),
                    "no_card": sum(1 for item in items if item.first_card_time is None),
                    "median_lead_days": round(statistics.median(before), 1) if before else None,
                }
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "step_hours": self.step.total_seconds() / 3600,
            "time_points": len(self.times),
            "knowledge_version": self.knowledge_version,
            "seconds": round(self.seconds, 3),
            "cards_showing_at_start": dict(sorted(self.at_start.items())),
            "new_cards": [
                {"week": week.isoformat(), "rule": rule, "new_cards": count}
                for (week, rule), count in sorted(self.new_cards.items())
            ],
            "lead_times": self.lead_summary(),
            "qs56": [
                {
                    "statement": measure.statement,
                    "description": measure.description,
                    "denominator": measure.denominator,
                    "numerator": measure.numerator,
                    "proportion": measure.proportion,
                }
                for measure in self.measures
            ],
            **self.tally.to_json(),
        }

    def render(self) -> str:
        lines = [
            f"Shadow mode {self.start.isoformat()} to {self.end.isoformat()}, {len(self.times)} time points "
            f"(knowledge {self.knowledge_version})",
            *self.tally.render(),
            "New cards by rule: "
            + (
                ", ".join(
                    f"{rule} {sum(c for (_, r), c in self.new_cards.items() if r == rule):,}" for rule in self.rules
                )
                or "none"
            ),
        ]
        for row in self.lead_summary():
            median = f"median lead {row['median_lead_days']} d" if row["median_lead_days"] is not None else "no lead"
            lines.append(
                f"{row['event']}: {row['patients']} patients; card before {row['card_before_event']} ({median}), "
                f"after {row['card_after_event']}, none {row['no_card']}"
            )
        for measure in self.measures:
            share = f"{measure.proportion:.0%}" if measure.proportion is not None else "n/a"
            lines.append(f"{measure.statement}: {measure.numerator}/{measure.denominator} ({share})")
        lines.append(
            f"Report: shadow_report.html; numbers: alert_load.csv, lead_times.csv, qs56.csv ({self.seconds:.1f} s)"
        )
        return "\n".join(lines) + "\n"


def _time_points(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    times = []
    moment = start
    while moment <= end:
        times.append(moment)
        moment += step
    return times


def _replay_patient(
    report: ShadowReport,
    screener: Any,
    library: ValueSetLibrary,
    patient_id: str,
    resources: list[Resource],
    references: PatientReferences,
) -> PatientResult:
    """Replay one patient into ``report``; its screening at the last time point."""
    showing: set[str] = set()
    first_card: dict[str, datetime] = {}
    result = PatientResult(patient_id, screened=False)
    recorded = [(recorded_at(resource, report.start.tzinfo or UTC), resource) for resource in resources]
    for index, moment in enumerate(report.times):
        known = [resource for when, resource in recorded if when is None or when <= moment]
        result = screen_patient(screener, patient_id, known, moment, references=references)
        if not result.screened:
            return result
        now = {row.rule for row in result.rows}
        for rule in now - showing:
            first_card.setdefault(rule, moment)
            if index == 0:
                report.at_start[rule] += 1
            else:
                report.new_cards[(monday(moment), rule)] += 1
        showing = now
    events = patient_events(library, resources, report.times[-1])
    spinal = sorted((when, rule) for rule, when in first_card.items() if rule in SPINAL_RULES)
    first_time, first_rule = spinal[0] if spinal else (None, None)
    for kind, times in events.items():
        later = [when for when in times if when >= report.start]
        if later:
            report.lead_times.append(
                LeadTime(patient_id, kind, later[0], first_time, first_rule, first_time == report.times[0])
            )
    for measure in report.measures:
        card = first_card.get(measure.rule)
        if card is None or card == report.times[0]:
            continue  # no new card of the rule: not in the denominator
        measure.denominator += 1
        since, until = card - report.step, card + measure.window
        measure.numerator += any(since <= when <= until for when in events[MRI_EVENT])
    return result


def _write_csv(report: ShadowReport, out_dir: Path) -> None:
    with (out_dir / "alert_load.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(("week", "rule", "new_cards"))
        for week in report.weeks:
            for rule in report.rules:
                writer.writerow((week.isoformat(), rule, report.new_cards.get((week, rule), 0)))
    with (out_dir / "lead_times.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ("patient_id", "event", "event_time", "first_card_time", "first_card_rule", "showing_at_start", "lead_days")
        )
        for item in sorted(report.lead_times, key=lambda item: (item.event, item.patient_id)):
            days = item.lead_days
            writer.writerow(
                (
                    item.patient_id,
                    item.event,
                    item.event_time.isoformat(),
                    item.first_card_time.isoformat() if item.first_card_time else "",
                    item.first_card_rule or "",
                    "yes" if item.showing_at_start else "no",
                    f"{days:.2f}" if days is not None else "",
                )
            )
    with (out_dir / "qs56.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(("statement", "description", "denominator", "numerator", "proportion"))
        for measure in report.measures:
            share = f"{measure.proportion:.4f}" if measure.proportion is not None else ""
            writer.writerow((measure.statement, measure.description, measure.denominator, measure.numerator, share))


def run_shadow(
    export_dir: Path,
    out_dir: Path,
    start: datetime,
    end: datetime,
    step: timedelta,
    settings: Settings,
    progress: Progress,
) -> ShadowReport:
    """Replay the screener over ``export_dir`` from ``start`` to ``end``; write the report to ``out_dir``."""
    started = time.monotonic()
    library = ValueSetLibrary.load(settings.profiles_dir / "valuesets")
    screener = build_screener(settings)
    folder = find_export(export_dir)
    report = ShadowReport(
        start, end, step, _time_points(start, end, step), folder, load_knowledge_version(settings.profiles_dir)
    )
    references = folder.references()
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="mscc-shadow-") as scratch,
        grouped_export(folder, Path(scratch), report.tally, progress) as groups,
    ):
        progress.phase(f"Replaying {len(report.times)} time points", groups.patient_count(), "patients")
        for patient_id, resources in groups.patients():
            report.tally.count_patient(_replay_patient(report, screener, library, patient_id, resources, references))
            progress.advance()
    report.seconds = time.monotonic() - started
    _write_csv(report, out_dir)
    (out_dir / "shadow_summary.json").write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    (out_dir / "shadow_report.html").write_text(render_html(report), encoding="utf-8")
    return report

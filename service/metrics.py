"""Prometheus metrics of one application (RED: rate, errors, duration; auth rejections).

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so that several apps
in one process (tests, replays) never share or double-register counters. Labels are
low-cardinality by construction: no patient id, ``hookInstance`` or card uuid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.audit import AuditSnapshot

__all__ = [
    "AUDIT_METRIC_NAMES",
    "MULTIPROCESS_DIR_VARIABLE",
    "Metrics",
    "app_metrics",
    "multiprocess_registry",
    "outcome_of",
    "share_between_processes",
]

#: prometheus_client's switch to values in files shared by several processes.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

#: The audit trail's series (alert rules in deploy/prometheus/alerts.yaml use these names).
AUDIT_METRIC_NAMES = (
    "cds_audit_records_spooled_total",
    "cds_audit_records_written_total",
    "cds_audit_records_dead_lettered_total",
    "cds_audit_spool_backlog",
    "cds_audit_spool_oldest_age_seconds",
    "cds_audit_database_up",
)

#: Around the spec's ~500 ms response target (engineering.md §3.2).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)


def outcome_of(status: int) -> str:
    """The ``outcome`` label of a response status."""
    if status == 401:
        return "auth_error"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


class Metrics:
    """The counters and histograms the service updates."""

    def __init__(self) -> None:
        self._audit_copy: _AuditCopy | None = None
        #: set by watch_audit when several workers share the metrics files
        self._audit_snapshot: Callable[[], AuditSnapshot] | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "cds_requests_total",
            "HTTP requests answered, by route and outcome.",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "cds_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.auth_rejections = Counter(
            "cds_auth_rejections_total",
            "Client JWTs refused, by reason.",
            ["reason"],
            registry=self.registry,
        )

        self.cards = Counter(
            "cds_cards_returned_total",
            "Cards returned, by rule and indicator.",
            ["service_id", "rule_id", "indicator"],
            registry=self.registry,
        )
        self.rule_evaluations = Counter(
            "cds_rule_evaluations_total",
            "Rule verdicts, by rule, rule version and result (fired, not_fired, suppressed, insufficient_data).",
            ["rule_id", "rule_version", "result"],
            registry=self.registry,
        )
        self.prefetch_missing = Counter(
            "cds_prefetch_missing_total",
            "Prefetch keys whose data could not be obtained, by key.",
            ["service_id", "key"],
            registry=self.registry,
        )
        self.resources_excluded = Counter(
            "cds_resources_excluded_total",
            "Resources not used because they are not the context patient's, by prefetch key and reason.",
            ["service_id", "key", "reason"],
            registry=self.registry,
        )

    def watch_audit(self, snapshot: Callable[[], AuditSnapshot]) -> None:
        """Expose the audit trail's counters, read from ``snapshot`` at each scrape.

        With several worker processes the scrape is answered by their supervisor, which
        cannot call ``snapshot``: each worker then copies its figures into the shared
        files, whenever :meth:`publish_audit` is called.
        """
        if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
            self._audit_snapshot = snapshot
        else:
            self.registry.register(_AuditCollector(snapshot))

    def publish_audit(self) -> None:
        """Copy the audit figures into the files the supervisor reads (several workers only)."""
        snapshot = self._audit_snapshot
        if snapshot is None:
            return
        # Made in the worker, on first use: a gauge made in the supervisor before the fork
        # would report its 0 for as long as the supervisor lives.
        if self._audit_copy is None:
            self._audit_copy = _AuditCopy(snapshot)
        self._audit_copy.publish()

    def observe_invocation(self, service_id: str, annotations: Mapping[str, object]) -> None:
        """Count what the service annotated on one hook call (see ScreeningService)."""
        for item in _items(annotations.get("card_rules")):
            if len(item) == 2:
                self.cards.labels(service_id=service_id, rule_id=item[0], indicator=item[1]).inc()
        for item in _items(annotations.get("rule_results")):
            if len(item) == 3:
                self.rule_evaluations.labels(rule_id=item[0], rule_version=item[1], result=item[2]).inc()
        for item in _items(annotations.get("excluded")):
            if len(item) == 3 and item[2].isdigit():
                self.resources_excluded.labels(service_id=service_id, key=item[0], reason=item[1]).inc(int(item[2]))
        missing = annotations.get("prefetch_keys_missing")
        for key in missing if isinstance(missing, list) else ():
            self.prefetch_missing.labels(service_id=service_id, key=str(key)).inc()

    def observe_request(self, route: str, status: int, duration_s: float) -> None:
        self.requests.labels(route=route, outcome=outcome_of(status)).inc()
        self.request_duration.labels(route=route).observe(duration_s)

    def reject_token(self, reason: str) -> None:
        self.auth_rejections.labels(reason=reason).inc()

    def exposition(self) -> bytes:
        """The text exposition format, for a scrape endpoint on a separate port."""
        return generate_latest(self.registry)


#: The audit trail's series, declared once: read at scrape time by one process
#: (:class:`_AuditCollector`) or copied into the shared files by each worker (:class:`_AuditCopy`).
#: Counter names without ``_total``: the exposition adds it.
_AUDIT_COUNTERS: tuple[tuple[str, str, Callable[[AuditSnapshot], float]], ...] = (
    ("cds_audit_records_spooled", "Audit records written to the local spool.", lambda now: now.spooled),
    (
        "cds_audit_records_written",
        "Audit records moved from the spool into the database.",
        lambda now: now.written,
    ),
    (
        "cds_audit_records_dead_lettered",
        "Audit records the database refused, kept in a dead-letter file.",
        lambda now: now.dead_lettered,
    ),
)
#: name, help, how the supervisor combines the workers' values, value
_Combined = Literal["livesum", "livemax", "livemin"]
_AUDIT_GAUGES: tuple[tuple[str, str, _Combined, Callable[[AuditSnapshot], float]], ...] = (
    (
        "cds_audit_spool_backlog",
        "Audit records in the spool not yet in the database.",
        "livesum",
        lambda now: float(now.backlog),
    ),
    (
        "cds_audit_spool_oldest_age_seconds",
        "Age of the oldest audit record not yet in the database (0 when none waits).",
        "livemax",
        lambda now: now.oldest_age_s,
    ),
    (
        "cds_audit_database_up",
        "1 when the audit writer's last statement reached the database, else 0.",
        "livemin",
        lambda now: 1.0 if now.database_reachable else 0.0,
    ),
)


class _AuditCollector(Collector):
    """Reads the spool's and writer's own counters at scrape time: one source of truth, no double counting."""

    def __init__(self, snapshot: Callable[[], AuditSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        now = self._snapshot()
        for name, documentation, value in _AUDIT_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=value(now))
        for name, documentation, _, level in _AUDIT_GAUGES:
            yield GaugeMetricFamily(name, documentation, value=level(now))


class _AuditCopy:
    """The audit series of one worker process, as values in the shared files.

    Counters grow by what was added since the last copy (the supervisor sums them over
    processes, dead ones included); the backlog is summed over live workers, the oldest
    age is their maximum, and the database counts as up only when every worker reaches it.
    """

    def __init__(self, snapshot: Callable[[], AuditSnapshot]) -> None:
        self._snapshot = snapshot
        # Not registered: in multi-process mode the values live in files, read by the supervisor.
        self._counters = [
            (Counter(name, documentation, registry=None), value) for name, documentation, value in _AUDIT_COUNTERS
        ]
        self._counted = [0.0] * len(self._counters)
        self._gauges = [
            (Gauge(name, documentation, multiprocess_mode=mode, registry=None), level)
            for name, documentation, mode, level in _AUDIT_GAUGES
        ]

    def publish(self) -> None:
        now = self._snapshot()
        for index, (counter, value) in enumerate(self._counters):
            total = value(now)
            if total > self._counted[index]:
                counter.inc(total - self._counted[index])
            self._counted[index] = total
        for gauge, level in self._gauges:
            gauge.set(level(now))


def share_between_processes(directory: Path) -> None:
    """Keep every metric value created from now on in files under ``directory``, shared by the workers.

    Called by ``serve`` before the app is built, in the supervisor; the workers forked
    from it inherit the setting, and each writes files of its own.
    """
    from prometheus_client import values

    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_registry(directory: Path) -> CollectorRegistry:
    """What the supervisor serves on the metrics port: every worker's values, combined."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def _items(value: object) -> list[tuple[str, ...]]:
    if not isinstance(value, list):
        return []
    return [tuple(str(part) for part in item) for item in value if isinstance(item, tuple)]


def app_metrics(app: FastAPI) -> Metrics:
    """The metrics of ``app``, created on first use and kept in ``app.state``."""
    metrics = getattr(app.state, "metrics", None)
    if not isinstance(metrics, Metrics):
        metrics = Metrics()
        app.state.metrics = metrics
    return metrics

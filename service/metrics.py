"""Prometheus metrics of one application (RED: rate, errors, duration; auth rejections).

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so that several apps
in one process (tests, replays) never share or double-register counters. Labels are
low-cardinality by construction: no patient id, ``hookInstance`` or card uuid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.audit import AuditSnapshot

__all__ = ["AUDIT_METRIC_NAMES", "Metrics", "app_metrics", "outcome_of"]

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
        """Expose the audit trail's counters, read from ``snapshot`` at each scrape."""
        self.registry.register(_AuditCollector(snapshot))

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


class _AuditCollector(Collector):
    """Reads the spool's and writer's own counters at scrape time: one source of truth, no double counting."""

    def __init__(self, snapshot: Callable[[], AuditSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        now = self._snapshot()
        # Counter families take the name without _total; the exposition adds it.
        for name, documentation, value in (
            ("cds_audit_records_spooled", "Audit records written to the local spool.", now.spooled),
            ("cds_audit_records_written", "Audit records moved from the spool into the database.", now.written),
            (
                "cds_audit_records_dead_lettered",
                "Audit records the database refused, kept in a dead-letter file.",
                now.dead_lettered,
            ),
        ):
            yield CounterMetricFamily(name, documentation, value=value)
        for name, documentation, level in (
            ("cds_audit_spool_backlog", "Audit records in the spool not yet in the database.", float(now.backlog)),
            (
                "cds_audit_spool_oldest_age_seconds",
                "Age of the oldest audit record not yet in the database (0 when none waits).",
                now.oldest_age_s,
            ),
            (
                "cds_audit_database_up",
                "1 when the audit writer's last statement reached the database, else 0.",
                1.0 if now.database_reachable else 0.0,
            ),
        ):
            yield GaugeMetricFamily(name, documentation, value=level)


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

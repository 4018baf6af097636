"""Prometheus exposition: HTTP counters kept as requests pass, DORA and collector figures read at scrape time.

Names follow Prometheus' conventions (checked by ``promtool check metrics`` in the tests): base units
(seconds), ``_total`` on counters, ``_ratio`` for 0-1 shares, ``_info`` for the constant-1 build info.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metrichub_core import __version__

__all__ = ["CONTENT_TYPE", "HTTP_METHODS", "LEVELS", "ApiMetrics", "DoraSample", "SourceSample", "method_label"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEVELS = {"low": 0, "medium": 1, "high": 2, "elite": 3}
BREAKER_STATES = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}

# Label values come from bounded sets only: a client picks the method token (any 1-N letters), so anything
# outside the methods HTTP defines for APIs is "OTHER"; routes are templates ("unmatched" else); statuses
# are the app's own codes.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class DoraSample:
    """One (service, environment) report's figures; ``None`` values are not exported."""

    service: str
    environment: str
    values: Mapping[str, float | None]
    levels: Mapping[str, str | None]


@dataclass(frozen=True)
class SourceSample:
    source: str
    kind: str
    counters: Mapping[str, float] = field(default_factory=dict)
    breaker_state: str | None = None


# No per-day rate: it is metrichub_dora_deployments / metrichub_dora_window_seconds (base units), in PromQL.
_DORA_GAUGES = {
    "deployments": "Successful deployments in the window.",
    "lead_time_median_seconds": "Median lead time for changes.",
    "lead_time_p90_seconds": "90th percentile lead time for changes.",
    "change_failure_ratio": "Share of deployments that caused a failure (0-1).",
    "failed_deployment_recovery_median_seconds": "Median failed-deployment recovery time.",
    "time_to_restore_median_seconds": "Median time to restore service over all resolved incidents.",
    "rework_ratio": "Share of deployments that were unplanned rework (0-1).",
}

_COLLECTOR_COUNTERS = {
    "requests": "Requests sent upstream by the source's collector (each retry counts).",
    "retries": "Retried upstream requests.",
    "rate_limit_waits": "Pauses asked for by the upstream's rate limit.",
    "rate_limit_wait_seconds": "Seconds spent waiting for the upstream's rate limit.",
    "short_circuited": "Requests refused by an open circuit breaker.",
    "failures": "Upstream requests that failed after every policy gave up.",
}


class _Snapshot(Collector):
    """Serves whatever the last scrape-time refresh stored."""

    def __init__(self) -> None:
        self.window_seconds: float = 30 * 86_400.0
        self.dora: list[DoraSample] = []
        self.sources: list[SourceSample] = []

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics())

    def _metrics(self) -> Iterator[Metric]:
        window = GaugeMetricFamily("metrichub_dora_window_seconds", "Length of the window the DORA gauges cover.")
        window.add_metric([], self.window_seconds)
        yield window
        for name, help_text in _DORA_GAUGES.items():
            family = GaugeMetricFamily(f"metrichub_dora_{name}", help_text, labels=["service", "environment"])
            for sample in self.dora:
                value = sample.values.get(name)
                if value is not None:
                    family.add_metric([sample.service, sample.environment], float(value))
            yield family
        level = GaugeMetricFamily(
            "metrichub_dora_level",
            "DORA performance level: 0 low, 1 medium, 2 high, 3 elite (absent when data is insufficient).",
            labels=["service", "environment", "metric"],
        )
        for sample in self.dora:
            for metric, level_name in sample.levels.items():
                if level_name in LEVELS:
                    level.add_metric([sample.service, sample.environment, metric], LEVELS[level_name])
        yield level
        for name, help_text in _COLLECTOR_COUNTERS.items():
            counter = CounterMetricFamily(f"metrichub_collector_{name}", help_text, labels=["source", "kind"])
            for source in self.sources:
                if name in source.counters:
                    counter.add_metric([source.source, source.kind], float(source.counters[name]))
            yield counter
        breaker = GaugeMetricFamily(
            "metrichub_collector_breaker_state",
            "Circuit breaker of the source: 0 closed, 1 half-open, 2 open.",
            labels=["source", "kind"],
        )
        for source in self.sources:
            if source.breaker_state in BREAKER_STATES:
                breaker.add_metric([source.source, source.kind], BREAKER_STATES[source.breaker_state])
        yield breaker


class ApiMetrics:
    """One registry per app, so several apps (tests, workers) never share or clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        Info("metrichub_build", "The MetricHub version serving this API.", registry=registry).info(
            {"version": __version__}
        )
        self.http_requests = Counter(
            "metrichub_http_requests", "HTTP requests served.", ["method", "route", "status"], registry=registry
        )
        self.http_duration = Histogram(
            "metrichub_http_request_duration_seconds",
            "Time to serve an HTTP request.",
            ["method", "route"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.events_ingested = Counter(
            "metrichub_events_ingested", "Events stored through the API.", ["kind", "via"], registry=registry
        )
        self.webhook_deliveries = Counter(
            "metrichub_webhook_deliveries", "Webhook deliveries by outcome.", ["source", "outcome"], registry=registry
        )
        self.collections = Counter(
            "metrichub_collections", "Collections run by the API process.", ["source", "outcome"], registry=registry
        )
        dora_cache = Counter(
            "metrichub_dora_cache_lookups", "DORA report cache lookups.", ["result"], registry=registry
        )
        self.dora_cache_hits = dora_cache.labels("hit")
        self.dora_cache_misses = dora_cache.labels("miss")
        self.dora_cache_stale = dora_cache.labels("stale")
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.snapshot = _Snapshot()
        registry.register(self.snapshot)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request; ``route`` must be a template (or ``"unmatched"``), never the raw path."""
        method = method_label(method)
        status = status if 100 <= status <= 599 else 500
        children = self._request_children.get((method, route, status))
        if children is None:  # labels() costs more than the counting itself: resolve each combination once
            children = (self.http_requests.labels(method, route, str(status)), self.http_duration.labels(method, route))
            self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def method_label(method: str) -> str:
    """``method`` when HTTP defines it for APIs, else ``"OTHER"``: the label stays within eight values."""
    return method if method in HTTP_METHODS else "OTHER"

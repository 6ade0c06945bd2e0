"""Prometheus metrics, and how long a request waited on providers.

* `Metrics`: a registry of the app's own (no global state between apps).
* `RequestStats` (a context variable) measures how long a request waited on providers,
  counting overlapping calls once, so `gateway_overhead_seconds` = total - waiting, the
  way Apollo Router's overhead metric is defined.
"""

from __future__ import annotations

import contextvars
import re
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram

__all__ = ["Metrics", "RequestStats", "current_stats", "endpoint_label"]


@dataclass
class RequestStats:
    """Time a request spent waiting on providers, overlapping calls counted once."""

    started: float = field(default_factory=time.perf_counter)
    calls: int = 0
    waiting: float = 0.0
    _in_flight: int = 0
    _since: float = 0.0

    def call_started(self) -> None:
        if self._in_flight == 0:
            self._since = time.perf_counter()
        self._in_flight += 1
        self.calls += 1

    def call_ended(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.waiting += time.perf_counter() - self._since

    def overhead(self, now: float | None = None) -> float:
        total = (time.perf_counter() if now is None else now) - self.started
        return max(0.0, total - self.waiting)


_stats: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar(
    "esim_gateway_request_stats", default=None
)


def current_stats() -> RequestStats | None:
    return _stats.get()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # python_gc_*: the cyclic collector's runs per generation, read from gc.get_stats()
        # at scrape time (nothing per request); a rise per request means request state
        # is being left in reference cycles
        GCCollector(registry=r)
        self.operations = Counter(
            "graphql_operations",
            "GraphQL operations by name and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "http_request_seconds",
            "Request time",
            ["route"],
            registry=r,
        )
        self.overhead_seconds = Histogram(
            "gateway_overhead_seconds",
            "Request time minus time spent waiting on providers",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.provider_calls = Counter(
            "provider_calls",
            "Upstream calls by provider, endpoint and status",
            ["provider", "endpoint", "status"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "provider_call_seconds",
            "Upstream call latency",
            ["provider", "endpoint"],
            registry=r,
        )
        self.loader_batch = Histogram(
            "loader_batch_size",
            "Keys per loader batch",
            ["loader"],
            buckets=(1, 2, 5, 10, 20, 50, 100),
            registry=r,
        )
        self.circuit_open = Gauge(
            "provider_circuit_open",
            "1 while a provider's circuit is open",
            ["provider"],
            registry=r,
        )
        self.reconciler_backlog = Gauge(
            "reconciler_backlog",
            "Orders not settled yet",
            registry=r,
        )
        self.duplicate_purchases = Counter(
            "esim_gateway_duplicate_purchases",
            "Provider orders found beyond the first under one order's reference",
            ["provider"],
            registry=r,
        )
        self.outbound_pending = Gauge(
            "outbound_webhooks_pending",
            "Outbound webhook deliveries waiting to be sent or retried",
            registry=r,
        )
        self.live_broker_connected = Gauge(
            "esim_gateway_live_broker_connected",
            "1 while other replicas' changes reach this replica's subscriptions"
            " (PostgreSQL LISTEN/NOTIFY connected; always 1 in a single process)",
            registry=r,
        )
        self.webhooks = Counter(
            "webhook_deliveries",
            "Webhook deliveries by provider and answer",
            ["provider", "status"],
            registry=r,
        )
        self._operation_series: dict[tuple[str, str], Any] = {}

    def count_operation(self, name: str, outcome: str) -> None:
        # a label lookup takes the metric's lock and builds a key on every call; the
        # children are kept here (as prometheus_client keeps them: one per name/outcome)
        series = self._operation_series.get((name, outcome))
        if series is None:
            series = self._operation_series[(name, outcome)] = self.operations.labels(name, outcome)
        series.inc()


_ID_SEGMENT = re.compile(r"/(?:[0-9]{3,}|[0-9a-fA-F-]{16,}|eg-[0-9a-f]+)(?=/|$)")


def endpoint_label(path: str) -> str:
    """/api/v1/orders/658441501843542 -> /api/v1/orders/:id (bounded label values)."""
    if path.startswith("/install/"):  # a capability token: never a label value
        return "/install/:token"
    return _ID_SEGMENT.sub("/:id", path)

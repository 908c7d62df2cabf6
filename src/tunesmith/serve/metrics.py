"""What GET /metrics reports, in Prometheus' text format: requests, latency, batch sizes, errors, queue.

Each app has a registry of its own, so that two servers in one process (tests) count apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Requests are counted per route, never per raw path: a scan of random URLs must not grow the series.
ROUTES = frozenset({"/", "/predict", "/health", "/info", "/metrics", "/docs", "/openapi.json"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tunesmith_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "tunesmith_request_seconds",
            "Time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter("tunesmith_texts", "Texts predicted", registry=self.registry)
        self.batch_size = Histogram(
            "tunesmith_batch_size", "Texts per model call", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.errors = Counter("tunesmith_errors", "Requests answered with an error", ["kind"], registry=self.registry)
        self.queue = Gauge("tunesmith_queue_texts", "Texts accepted and not yet answered", registry=self.registry)

    def observe(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(_kind(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _kind(status: int) -> str:
    return {401: "unauthorized", 413: "too_large", 422: "invalid", 503: "overloaded"}.get(
        status, "server" if status >= 500 else "client"
    )

"""Prometheus metrics, in a registry per app (two apps in one process don't mix)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)


class _QueueDepth(Collector):
    def __init__(self, read: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "souverain_queue_depth",
            "Requests queued or running per model deployment",
            labels=["model", "deployment"],
        )
        for model, deployment, depth in self._read():
            gauge.add_metric([model, deployment], depth)
        yield gauge


class Metrics:
    def __init__(self, queue_depths: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "souverain_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "souverain_http_request_duration_seconds",
            "Time to the end of the response, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_calls = Counter(
            "souverain_model_calls",
            "Model calls by model, endpoint and outcome",
            ["model", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "souverain_tokens",
            "Tokens by model and kind (prompt, completion)",
            ["model", "kind"],
            registry=self.registry,
        )
        self.first_token = Histogram(
            "souverain_time_to_first_token_seconds",
            "Time from request to first streamed token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_QueueDepth(queue_depths))

    def render(self) -> bytes:
        return generate_latest(self.registry)

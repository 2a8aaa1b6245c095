"""Prometheus metrics of one node, in its own registry (two nodes in one process never collide).

Named `NodeMetrics`: `medtk.schema.metrics.Metrics` is the run folder's model metrics document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class NodeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "medtk_serve_http_requests", "HTTP requests by endpoint and status code", ["endpoint", "code"], registry=r
        )
        self.c_store = Counter("medtk_serve_c_store", "C-STORE requests answered, by status", ["status"], registry=r)
        self.images = Counter(
            "medtk_serve_images", "Images run through the model, by source and outcome", ["source", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "medtk_serve_latency_seconds", "Time from admission to result, by source", ["source"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.inference = Histogram(
            "medtk_serve_inference_seconds", "Decode + interpreter + CAM time per image", buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter("medtk_serve_errors", "Errors by stage", ["stage"], registry=r)
        self.forwarded = Counter(
            "medtk_serve_forwarded", "Results sent, by destination and outcome", ["destination", "outcome"], registry=r
        )
        self.queue_depth = Gauge("medtk_serve_queue_depth", "Images admitted and not yet processed", registry=r)
        self.queue_capacity = Gauge("medtk_serve_queue_capacity", "Work queue capacity", registry=r)
        self.forward_pending = Gauge(
            "medtk_serve_forward_pending", "Results waiting for a destination", ["destination"], registry=r
        )
        self.set_aside = Counter(
            "medtk_serve_set_aside", "Results a destination will never take, moved to rejected/, by reason",
            ["destination", "reason"], registry=r,
        )
        self.destination_up = Gauge(
            "medtk_serve_destination_up", "1 while the last attempt reached the destination and it took work",
            ["destination"], registry=r,
        )
        self.commit_retries = Counter(
            "medtk_serve_commit_retries", "Commits of results retried because the spool's disk refused them",
            registry=r,
        )
        self.ready = Gauge("medtk_serve_ready", "1 while /healthz answers 200 (the node can make progress)",
                           registry=r)
        self.model_gate_failed = Gauge(
            "medtk_serve_model_gate_failed",
            "1 when the served variant failed compress's quality gate (served only with --allow-failed-variant)",
            registry=r,
        )

    def track_queue(self, depth: Callable[[], int], capacity: int) -> None:
        self.queue_depth.set_function(depth)
        self.queue_capacity.set(capacity)

    def track_health(self, ready: Callable[[], bool]) -> None:
        self.ready.set_function(lambda: float(ready()))

    def render(self) -> bytes:
        return generate_latest(self.registry)

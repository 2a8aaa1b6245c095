"""Latency samples -> summary statistics (the numbers every bench table and JSON file shows)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    runs: int
    min_ms: float
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    throughput_per_s: float | None  # sequential, batch 1: 1000 / mean; None when too fast to time (mean 0)


def summarize(samples_ms: list[float] | np.ndarray) -> LatencyStats:
    """Summary of steady-state latencies; percentiles by linear interpolation (numpy's default)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latency samples to summarize")
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    mean = float(values.mean())
    return LatencyStats(
        runs=int(values.size),
        min_ms=float(values.min()),
        mean_ms=mean,
        std_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(values.max()),
        throughput_per_s=ratio(1000.0, mean),
    )


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None where that is not a finite number (JSON is strict)."""
    if denominator == 0:
        return None
    value = numerator / denominator
    return value if math.isfinite(value) else None

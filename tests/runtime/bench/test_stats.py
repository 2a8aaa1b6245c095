"""Latency summaries: ordered percentiles, and never a non-finite number."""

import numpy as np
import pytest

from medtk.runtime.bench import summarize


def test_summarize_orders_percentiles():
    stats = summarize([5.0, 1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.min_ms == 1.0 and stats.max_ms == 100.0
    assert stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.throughput_per_s == pytest.approx(1000 / np.mean([5, 1, 2, 3, 4, 100]))


def test_too_fast_to_time_has_no_throughput_rather_than_infinity():
    assert summarize([0.0, 0.0]).throughput_per_s is None

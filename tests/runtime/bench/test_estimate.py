"""Device latency estimates from a profile's reference figures."""

import pytest

from medtk.devices import load_profile
from medtk.runtime.bench import estimate_latency, pick_reference


def test_estimate_prefers_same_precision_and_closest_work():
    coral = load_profile("coral-dev-board")
    assert pick_reference(coral, 4_000_000_000, "int8").model == "resnet50"
    assert pick_reference(coral, 300_000_000, "int8").model == "mobilenet_v2"
    estimate = estimate_latency(coral, 3_650_000_000, "int8", host_measured_ms=2.0)  # half of ResNet-50 at 299
    assert estimate.estimated_ms == pytest.approx(1763.0 / 2)
    assert estimate.implied_slowdown_vs_host == pytest.approx(estimate.estimated_ms / 2.0)
    assert not estimate.approximate
    assert estimate_latency(load_profile("jetson"), 730_000_000, "int8", 2.0).approximate  # derived figure


def test_an_unmeasurable_host_time_gives_no_slowdown_rather_than_infinity():
    assert estimate_latency(load_profile("coral-dev-board"), 300_000_000, "int8", 0.0).implied_slowdown_vs_host is None

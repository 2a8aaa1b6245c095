"""Fixtures for the bench tests: the tiny bench models and one report measured on this host."""

from __future__ import annotations

import pytest

from medtk.runtime.bench import BenchSettings, run_bench

FAST = BenchSettings(runs=5, warmup=1, threads=1)


@pytest.fixture(scope="session")
def models(bench_models):
    return bench_models


@pytest.fixture(scope="session")
def here_report(models):
    """float32 and int8 measured here (real worker processes), as a `BenchReport`."""
    return run_bench([models["float32"], models["int8"]], FAST)


@pytest.fixture(scope="session")
def estimate_report(models):
    """int8 measured here and estimated for a Raspberry Pi 4 (a host-estimate with an `estimate`)."""
    return run_bench([models["int8"]], BenchSettings(runs=3, warmup=0), device="pi4")

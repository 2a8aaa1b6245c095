"""What one bench worker measured for one model: the record the worker prints and `medtk bench` reads.

Its fields are the worker's JSON line (see `protocol.py`), and a device may run an older medtk than
the machine that reads the line: add fields with defaults, never rename or remove one.
"""

from __future__ import annotations

from dataclasses import dataclass

from medtk.runtime.bench.stats import LatencyStats


@dataclass(frozen=True)
class Machine:
    """The machine a worker ran on, and which device profile it looks like."""

    hostname: str
    platform: str
    machine: str
    python: str
    detected_profile: str | None
    detected_from: str


@dataclass(frozen=True)
class ModelBench:
    """What one worker measured for one model, on the machine it ran on."""

    model: str
    size_bytes: int
    macs: int
    variant: str
    backend: str
    delegate: str
    delegate_fallback: str | None
    threads: int
    init_ms: float  # interpreter creation + allocate_tensors
    first_inference_ms: float
    warmup_runs: int
    warmup_mean_ms: float
    bare: LatencyStats
    end_to_end_first_ms: float
    end_to_end: LatencyStats
    end_to_end_image: str
    rss_baseline_mb: float  # after imports, before the model is loaded
    rss_peak_mb: float  # peak RSS at the end: both interpreters loaded
    machine: Machine

"""Each exported variant's latency on this host, through its own engine: what the recommendation weighs.

File size says little about speed: `dynamic` is small and computes in float, `int8_mixed` is larger than
`int8` and may be as fast. So compress times every final file the way a device calls it (one prepared
image, batch 1, `Classifier.predict_prepared`: the invoke plus the runtime's copy-in and copy-out, the
same for every variant), in alternating rounds so that a slow moment on a shared machine falls on all
variants alike: each round runs every variant in turn (the order rotated per round), one warm-up call
then `runs` timed calls, and a variant's latency is the median of all its timed calls with the smallest
and largest round median as its spread. The host is not the device: `medtk bench RUN --device D`
measures there, or estimates from the device's reference figures.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.schema.compress import LatencySetting


@dataclass(frozen=True)
class MeasuredLatency:
    p50_ms: float  # median over every timed call
    round_range_ms: tuple[float, float]  # smallest and largest round median: the run-to-run spread


def measure_latencies(paths: dict[str, Path], image: np.ndarray, threads: int, rounds: int = 5,
                      runs: int = 5) -> tuple[dict[str, MeasuredLatency], LatencySetting]:
    """{variant: its latency} for the files in `paths` on one prepared `image` (S, S, C), and how."""
    from medtk.devices.cpu import read_cpu
    from medtk.runtime import Classifier
    from medtk.runtime.classifier import FailedGateWarning

    with warnings.catch_warnings():  # a failed variant is timed too; compress itself reports its gate
        warnings.simplefilter("ignore", FailedGateWarning)
        classifiers = {name: Classifier(path, num_threads=threads) for name, path in paths.items()}
    names = list(classifiers)
    samples: dict[str, list[list[float]]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            classifier = classifiers[name]
            batch = image[None].astype(classifier.input_dtype)
            classifier.predict_prepared(batch)  # warm-up: caches and the thread pool wake
            timed = []
            for _ in range(runs):
                start = time.perf_counter()
                classifier.predict_prepared(batch)
                timed.append((time.perf_counter() - start) * 1000.0)
            samples[name].append(timed)
    latencies = {
        name: MeasuredLatency(
            p50_ms=round(float(np.median(np.concatenate(per_round))), 3),
            round_range_ms=(round(float(min(np.median(r) for r in per_round)), 3),
                            round(float(max(np.median(r) for r in per_round)), 3)),
        )
        for name, per_round in samples.items() if per_round
    }
    setting = LatencySetting(threads=threads, rounds=rounds, runs_per_round=runs, host=read_cpu().describe(),
                             measured="p50 of one prepared image through each variant's own engine, batch 1")
    return latencies, setting

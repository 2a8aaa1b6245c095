"""Estimate a device's latency from its profile's reference figures, when the bench ran elsewhere.

Method ("macs-scaled-reference"): take the device's CPU reference figure closest to the benchmarked
model (same precision first, then the nearest amount of work), and scale its latency by the ratio of
multiply-accumulates: estimate = reference_ms * model_macs / reference_macs. It assumes the device
runs the benchmarked model as efficiently per MAC as the reference model, so it is good to about a
factor of two, better when the reference is the same architecture. Always labelled as an estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medtk.devices import Profile, Reference
from medtk.runtime.bench.stats import ratio

METHOD = "macs-scaled-reference"
METHOD_TEXT = (
    "estimate_ms = reference.latency_ms * model_macs / reference.macs, using the device profile's CPU "
    "reference with the same precision (else any) and the closest MAC count; assumes equal efficiency "
    "per MAC, so expect about +-2x (worse for 'derived' references)"
)


@dataclass(frozen=True)
class Estimate:
    device: str
    method: str
    method_text: str
    estimated_ms: float
    model_macs: int
    model_precision: str  # "float32" or "int8" (`medtk.variants.precision_of`)
    reference: Reference
    reference_source: str
    approximate: bool
    host_measured_ms: float
    implied_slowdown_vs_host: float | None  # None when the host time was too short to measure


def estimate_latency(profile: Profile, macs: int, precision: str, host_measured_ms: float) -> Estimate:
    """Scale the best-matching CPU reference of `profile` to a model with `macs` MACs."""
    reference = pick_reference(profile, macs, precision)
    estimated = reference.latency_ms * macs / reference.macs
    return Estimate(
        device=profile.name,
        method=METHOD,
        method_text=METHOD_TEXT,
        estimated_ms=estimated,
        model_macs=macs,
        model_precision=precision,
        reference=reference,
        reference_source=reference.source,
        approximate=reference.kind == "derived" or reference.precision != precision,
        host_measured_ms=host_measured_ms,
        implied_slowdown_vs_host=ratio(estimated, host_measured_ms),
    )


def pick_reference(profile: Profile, macs: int, precision: str) -> Reference:
    candidates = profile.cpu_references()
    same = [ref for ref in candidates if ref.precision == precision]
    pool = same or list(candidates)
    return min(pool, key=lambda ref: abs(math.log(max(macs, 1) / ref.macs)))

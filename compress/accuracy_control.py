"""Accuracy-controlled post-training int8: keep the few layers that hurt most in float until the model is
within a validation budget (after OpenVINO NNCF's `quantize_with_accuracy_control` and its `max_drop`).

1. Full int8 (softmax float) is measured on the validation split; within `max_drop` of the float32
   reference, nothing is kept float.
2. Otherwise the int8 ops are ranked by their own quantization noise (`Int8Calibration.layer_errors`,
   TFLite's QuantizationDebugger), and the top 1, 2, 4, ... of them are kept float until the model is
   within budget or `max_float_layers` is reached; a bisection then finds the smallest prefix within budget.
3. When the ranking by noise does not get there (the damage is accumulated rather than local), the
   fallback ranks the `measured_candidates` noisiest layers by what keeping each one float alone
   recovers on validation (NNCF's ranking by measured metric), then adds them greedily in that order.

Only the validation split is used here: the test split reports, it never selects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    float_layers: tuple[str, ...]
    val_metric: float | None


@dataclass(frozen=True)
class MixedResult:
    model: bytes
    float_layers: tuple[str, ...]  # output tensor names of the ops kept float, in the order they were added
    val_metric: float | None
    reference: float  # the float32 model's validation metric
    within_budget: bool
    ranking: str  # "none" (full int8 was within budget), "debugger" or "measured"
    attempts: tuple[Attempt, ...]


def quantize_with_accuracy_control(
    calibrated, validate: Callable[[bytes], float | None], *, reference: float, max_drop: float,
    max_float_layers: int, measured_candidates: int = 8,
) -> MixedResult:
    """`calibrated`: a `medtk.compress.convert.Int8Calibration`; `validate(model_bytes)` = the validation
    metric (higher is better, e.g. AUC) of a converted model, measured through the runtime."""
    attempts: dict[tuple[str, ...], Attempt] = {}
    models: dict[tuple[str, ...], bytes] = {}

    def measure(layers: tuple[str, ...]) -> float | None:
        if layers not in attempts:
            models[layers] = calibrated.quantize(layers)
            value = validate(models[layers])
            attempts[layers] = Attempt(layers, value)
            log.info("int8 with %d layer(s) float: validation %s (float32 %.4f, budget -%g)",
                     len(layers), "n/a" if value is None else f"{value:.4f}", reference, max_drop)
        return attempts[layers].val_metric

    def ok(layers: tuple[str, ...]) -> bool:
        value = measure(layers)
        return value is not None and reference - value <= max_drop

    def result(layers: tuple[str, ...], ranking: str) -> MixedResult:
        return MixedResult(model=models[layers], float_layers=layers, val_metric=attempts[layers].val_metric,
                           reference=reference, within_budget=ok(layers), ranking=ranking,
                           attempts=tuple(attempts.values()))

    if ok(()) or max_float_layers < 1:
        return result((), "none")
    ranked = tuple(error.tensor for error in calibrated.layer_errors())
    log.info("noisiest int8 ops: %s", ", ".join(ranked[:5]))
    found = _smallest_prefix(ranked, ok, max_float_layers)
    if found is not None:
        return result(found, "debugger")
    log.info("keeping the %d noisiest ops float did not reach the budget; ranking by measured recovery",
             min(max_float_layers, len(ranked)))
    candidates = ranked[:measured_candidates]
    for layer in candidates:
        measure((layer,))
    by_recovery = tuple(sorted(candidates, key=lambda layer: -(attempts[(layer,)].val_metric or float("-inf"))))
    found = _smallest_prefix(by_recovery, ok, max_float_layers)
    if found is not None:
        return result(found, "measured")
    best = max(attempts.values(), key=lambda attempt: attempt.val_metric if attempt.val_metric is not None else float("-inf"))
    return result(best.float_layers, "measured")


def _smallest_prefix(ranked: tuple[str, ...], ok: Callable[[tuple[str, ...]], bool], limit: int) -> tuple[str, ...] | None:
    """The shortest prefix of `ranked` (at most `limit` long) that is `ok`, by doubling then bisection;
    None when even the longest allowed prefix is not."""
    limit = min(limit, len(ranked))
    if limit < 1:
        return None
    low, size = 0, 1  # prefixes of length <= low are known not ok
    while not ok(ranked[:size]):
        if size >= limit:
            return None
        low, size = size, min(limit, size * 2)
    while size - low > 1:
        middle = (low + size) // 2
        if ok(ranked[:middle]):
            size = middle
        else:
            low = middle
    return ranked[:size]

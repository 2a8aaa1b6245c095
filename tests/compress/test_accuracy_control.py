"""Accuracy control on a stand-in calibration: which layers stay float, and that only validation decides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from medtk.compress.accuracy_control import _smallest_prefix, quantize_with_accuracy_control


@dataclass(frozen=True)
class _Error:
    tensor: str


class _Calibration:
    """int8 whose validation AUC is 0.95 minus a penalty per harmful layer left in int8."""

    def __init__(self, harm: dict[str, float], ranking: list[str]):
        self.harm, self.ranking, self.quantized = harm, ranking, []

    def quantize(self, float_layers=()):
        self.quantized.append(tuple(float_layers))
        return ",".join(float_layers).encode()

    def layer_errors(self):
        return [_Error(name) for name in self.ranking]

    def validate(self, model: bytes) -> float:
        kept = set(model.decode().split(",")) - {""}
        return 0.95 - sum(loss for layer, loss in self.harm.items() if layer not in kept)


def _run(calibration: _Calibration, **kw):
    options = dict(reference=0.95, max_drop=0.005, max_float_layers=4)
    options.update(kw)
    return quantize_with_accuracy_control(calibration, calibration.validate, **options)


def test_full_int8_within_budget_keeps_nothing_float():
    calibration = _Calibration({"a": 0.001}, ["a", "b"])
    result = _run(calibration)
    assert result.float_layers == () and result.within_budget and result.ranking == "none"
    assert calibration.quantized == [()]


def test_noisiest_layers_are_kept_float_until_within_budget():
    calibration = _Calibration({"a": 0.2, "b": 0.05, "c": 0.001}, ["a", "b", "c", "d", "e"])
    result = _run(calibration)
    assert result.float_layers == ("a", "b") and result.within_budget and result.ranking == "debugger"
    assert result.val_metric == pytest.approx(0.949)
    assert result.model == b"a,b"


def test_measured_ranking_when_the_noise_ranking_misses_the_harmful_layer():
    calibration = _Calibration({"z": 0.3}, ["a", "b", "c", "z", "d"])
    result = _run(calibration, max_float_layers=2, measured_candidates=5)
    assert result.float_layers == ("z",) and result.within_budget and result.ranking == "measured"


def test_limit_reached_returns_the_best_model_measured_and_says_so():
    calibration = _Calibration({"a": 0.1, "b": 0.1, "c": 0.1}, ["a", "b", "c"])
    result = _run(calibration, max_float_layers=2, measured_candidates=3)
    assert not result.within_budget and len(result.float_layers) <= 2
    assert result.val_metric == max(a.val_metric for a in result.attempts)


def test_smallest_prefix_bisects_after_doubling():
    calls = []

    def ok(prefix):
        calls.append(len(prefix))
        return len(prefix) >= 5

    assert _smallest_prefix(tuple("abcdefghij"), ok, 8) == tuple("abcde")
    assert calls[:4] == [1, 2, 4, 8] and calls[-1] in (5, 6)
    assert _smallest_prefix(tuple("abc"), lambda prefix: False, 8) is None

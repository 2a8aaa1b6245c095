"""Accuracy control: which ops stay float is ranked on held-out training images by agreement with float32,
and decided by the upper bound of the validation AUC drop, not its point estimate (issue 22).

Stand-in calibrations (each op left int8 adds its own fixed noise to the logits and CAMs) test the rule;
one test runs it on a real small TFLite model through the real interpreter."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from medtk.compress.accuracy_control import (CamBudget, Evidence, _smallest_prefix, agreement,
                                             quantize_with_accuracy_control, validation_cam, within_cam_budget)
from medtk.compress.evaluate import Outputs

HELD_OUT, VAL = 400, 500


@dataclass(frozen=True)
class _Error:
    tensor: str
    op: str = "CONV_2D"
    noise: float = 0.1


def _outputs(z: np.ndarray, pattern: np.ndarray) -> Outputs:
    """Binary outputs whose logit difference is `z`: CAM cells pattern +- z/2, softmax of their means."""
    cam1 = z[:, None, None] / 2 + pattern
    cams = np.stack([-cam1, cam1], axis=-1)
    probs = np.stack([1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))], axis=1)
    return Outputs(probs=probs, cams=cams)


class _Calibration:
    """int8 where each op left in int8 adds `harm[op]` x its own fixed noise to every image's logit and CAM,
    and `cam_harm[op]` x noise to the CAM's cells alone (zero mean per image: the logits do not move).
    `order`: the ops in the order the model runs them (default: the debugger's `ranking`)."""

    def __init__(self, harm: dict[str, float], ranking: list[str], seed: int = 0,
                 cam_harm: dict[str, float] | None = None, order: list[str] | None = None):
        rng = np.random.default_rng(seed)
        self.harm, self.ranking, self.quantized = harm, ranking, []
        self.cam_harm, self.order = cam_harm or {}, order or ranking
        self.labels = (np.arange(VAL) % 2).astype(np.int64)
        self.z = {"held_out": rng.normal(0, 2, HELD_OUT), "val": 2.2 * (2 * self.labels - 1) + rng.normal(0, 1.5, VAL)}
        self.pattern = {split: rng.normal(0, 1, (len(z), 2, 2)) for split, z in self.z.items()}
        self.reference = self.evidence(b"float32")

    def quantize(self, float_layers=()):
        self.quantized.append(tuple(float_layers))
        return ",".join(float_layers).encode()

    def layer_errors(self):
        return [_Error(name) for name in self.ranking]

    def execution_order(self):
        return [(name, "CONV_2D") for name in self.order]

    def evidence(self, model: bytes) -> Evidence:
        kept = set(model.decode().split(",")) if model != b"float32" else set(self.harm) | set(self.cam_harm)
        out = {}
        for split, z in self.z.items():
            z, pattern = z.copy(), self.pattern[split].copy()
            for layer, harm in self.harm.items():
                if layer not in kept:
                    noise = np.random.default_rng([zlib.crc32(layer.encode()), len(z)])
                    z += harm * noise.normal(0, 1, len(z))
                    pattern += harm * noise.normal(0, 1, pattern.shape)
            for layer, harm in self.cam_harm.items():
                if layer not in kept:
                    cells = np.random.default_rng([zlib.crc32(layer.encode()), len(z), 1]).normal(0, 1, pattern.shape)
                    pattern += harm * (cells - cells.mean(axis=(1, 2), keepdims=True))
            out[split] = _outputs(z, pattern)
        return Evidence(held_out=out["held_out"], val=out["val"])


def _run(calibration: _Calibration, **kw):
    options = dict(positive_index=1, max_drop=0.005, max_float_layers=4)
    options.update(kw)
    return quantize_with_accuracy_control(calibration, calibration.evidence, calibration.reference,
                                          calibration.labels, **options)


def test_full_int8_within_budget_keeps_nothing_float():
    calibration = _Calibration({"a": 0.01}, ["a", "b"])
    result = _run(calibration)
    assert result.float_layers == () and result.within_budget and result.ranking == "none"
    assert calibration.quantized == [()] and result.kept_float == ()
    assert result.full.val_drop_interval[1] <= 0.005


def test_ops_are_ranked_by_held_out_agreement_not_by_their_noise_order():
    """The debugger lists `z` last; keeping it float alone is what brings the outputs back to float32."""
    calibration = _Calibration({"z": 1.5, "b": 0.05}, ["a", "b", "c", "z"])
    result = _run(calibration)
    assert result.float_layers == ("z",) and result.within_budget and result.ranking == "held-out agreement"
    assert set(calibration.quantized) >= {("a",), ("b",), ("c",), ("z",)}  # each candidate measured alone
    (kept,) = result.kept_float
    assert kept.tensor == "z" and kept.noise_rank == 4
    assert kept.held_out_disagreement_alone < kept.held_out_disagreement_full
    assert "ranked 4" in kept.reason and f"{kept.held_out_disagreement_alone:.4f}" in kept.reason
    assert result.model == b"z"


def test_a_point_estimate_within_budget_is_not_enough():
    """Full int8's validation drop is within the budget at its point estimate (what the first version
    accepted) but not at its upper 95% bound: the op that causes it stays float."""
    calibration = _Calibration({"a": 0.4}, ["a", "b"])
    result = _run(calibration)
    assert result.full.val_drop <= 0.005 < result.full.val_drop_interval[1]  # the case this test is about
    assert result.float_layers == ("a",) and result.within_budget
    assert result.chosen.val_drop_interval[1] <= 0.005


def test_limit_reached_returns_the_prefix_that_agrees_best_on_held_out_and_says_so():
    calibration = _Calibration({"a": 1.0, "b": 1.0, "c": 1.0}, ["a", "b", "c"])
    result = _run(calibration, max_float_layers=2, candidates=3)
    assert not result.within_budget and len(result.float_layers) == 2  # two of the three harmful ops
    prefixes = [a for a in result.attempts if len(a.float_layers) == 2]
    assert result.chosen.held_out.disagreement == min(a.held_out.disagreement for a in prefixes)


def test_when_no_op_helps_on_held_out_nothing_is_kept_float():
    """The damage is everywhere (here: in no op the debugger lists): no int8_mixed, and validation does
    not get to pick the luckiest of the useless candidates."""
    calibration = _Calibration({"elsewhere": 1.0}, ["a", "b", "c"])
    result = _run(calibration, candidates=3)
    assert result.float_layers == () and not result.within_budget and result.kept_float == ()


TAIL = [f"stage5_{i}" for i in range(6)]  # the network's last six ops, in the order it runs them


def _tail_damage() -> _Calibration:
    """Six small CAM errors in the last stage that add up (each op's CAM noise zero-mean: the logits, so the
    AUC, do not move); the debugger ranks two harmless early ops noisiest."""
    return _Calibration({}, ["early_a", "early_b", *TAIL], cam_harm={layer: 0.35 for layer in TAIL},
                        order=["early_a", "early_b", *TAIL])


def test_the_cam_gate_alone_starts_accuracy_control_and_the_network_tail_meets_it():
    """The AUC is within budget, the CAM is not: no op alone helps enough, so the network's tail stays float,
    the shortest tail whose validation CAM meets the gate at its 95% interval's end."""
    calibration = _tail_damage()
    result = _run(calibration, cam_budget=CamBudget(min_correlation=0.9, max_peak_shift=None),
                  max_float_layers=8, candidates=2)
    assert result.full.val_drop_interval[1] <= 0.005  # the AUC alone would have shipped full int8
    assert result.full.val_cam.correlation_low < 0.9
    assert result.ranking == "network tail" and result.within_budget is True  # a bool compress.json can hold
    size = len(result.float_layers)
    tails = tuple(reversed(TAIL))
    assert 1 < size <= 6 and result.float_layers == tails[:size]  # the last op first
    assert result.chosen.val_cam.correlation_low >= 0.9
    shorter = next(a for a in result.attempts if a.float_layers == tails[:size - 1])  # measured: the shortest
    assert shorter.val_cam.correlation_low < 0.9
    assert [kept.tensor for kept in result.kept_float] == list(tails[:size])
    assert all(kept.held_out_disagreement_alone is None and f"last {size} int8 ops" in kept.reason
               and kept.held_out_disagreement_together < kept.held_out_disagreement_full for kept in result.kept_float)


def test_without_a_cam_gate_the_same_model_ships_as_full_int8():
    result = _run(_tail_damage(), cam_budget=CamBudget(), max_float_layers=8, candidates=2)
    assert result.ranking == "none" and result.float_layers == () and result.within_budget


def test_a_cam_mean_within_the_gate_is_not_enough_when_its_interval_is_not():
    """The validation CAM correlation's point estimate meets the limit, the low end of its interval does
    not: the gate is checked where it would fail first, as the AUC's is."""
    calibration = _tail_damage()
    full = validation_cam(calibration.reference.val, calibration.evidence(b"").val)
    assert full.correlation_low < full.correlation < 1
    assert within_cam_budget(full, CamBudget(min_correlation=full.correlation_low))
    assert not within_cam_budget(full, CamBudget(min_correlation=(full.correlation + full.correlation_low) / 2))
    assert within_cam_budget(full, CamBudget())  # no gate, nothing to fail
    same = validation_cam(calibration.reference.val, calibration.reference.val)
    assert same.correlation == pytest.approx(1) and same.correlation_low == pytest.approx(1)
    assert same.peak_shift == 0 and same.peak_shift_high == 0
    assert not within_cam_budget(full, CamBudget(max_peak_shift=full.peak_shift_high / 2))


def test_agreement_is_zero_for_the_reference_and_grows_with_the_error():
    calibration = _Calibration({"a": 0.3}, ["a"])
    reference = calibration.reference.held_out
    assert agreement(reference, reference).disagreement == pytest.approx(0.0, abs=1e-9)
    small, large = (agreement(reference, _Calibration({"a": h}, ["a"]).evidence(b"").held_out) for h in (0.1, 0.5))
    assert 0 < small.logit_error < large.logit_error and small.disagreement < large.disagreement
    assert large.cam_correlation < small.cam_correlation < 1


def test_smallest_prefix_bisects_after_doubling():
    calls = []

    def ok(prefix):
        calls.append(len(prefix))
        return len(prefix) >= 5

    assert _smallest_prefix(tuple("abcdefghij"), ok, 8) == tuple("abcde")
    assert calls[:4] == [1, 2, 4, 8] and calls[-1] in (5, 6)
    assert _smallest_prefix(tuple("abc"), lambda prefix: False, 8) is None


def _tiny_classifier(size: int = 16):
    """A small real Keras classifier with the deployable contract's outputs (`probs`, `cam` over a 4x4
    grid), fitted for a few steps on the tests' toy task: converts in about a second, unlike a backbone."""
    from medtk.train.tfenv import keras
    from tests.runtime.runtime_models import synthetic_images, toy_labels

    k = keras()
    k.utils.set_random_seed(3)
    pixels = k.Input((size, size, 1), name="pixels")
    x = k.layers.Rescaling(1 / 127.5, offset=-1)(pixels)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = k.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    cam = k.layers.Conv2D(2, 1, name="cam")(x)
    probs = k.layers.Softmax(name="probs")(k.layers.GlobalAveragePooling2D()(cam))
    model = k.Model(pixels, [probs, cam])
    images = synthetic_images(np.random.default_rng(3), 256, size=size)
    trainer = k.Model(pixels, probs)
    trainer.compile(optimizer=k.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    trainer.fit(images.astype(np.float32), toy_labels(images), epochs=3, batch_size=32, verbose=0)
    return model


def _litert_outputs(tflite: bytes, images: np.ndarray) -> Outputs:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=tflite).get_signature_runner()
    dtype = runner.get_input_details()["pixels"]["dtype"]
    out = [runner(pixels=image[None].astype(dtype)) for image in images]
    return Outputs(probs=np.concatenate([o["probs"] for o in out]), cams=np.concatenate([o["cam"] for o in out]))


def test_on_a_real_int8_model_only_held_out_and_validation_images_are_used():
    """A small real model quantized for real, with a budget no model meets so the search runs: every candidate is a
    real int8 file run by LiteRT, the ops kept float are among the debugger's noisiest on the held-out
    images, and the record says why each stayed float."""
    from medtk.compress.convert import Int8Calibration, convert
    from tests.runtime.runtime_models import synthetic_images, toy_labels

    model = _tiny_classifier()
    rng = np.random.default_rng(11)
    calibration, held_out, val = (synthetic_images(rng, n, size=16) for n in (16, 48, 96))
    calibrated = Int8Calibration(model, list(calibration), debug=list(held_out))
    seen: list[np.ndarray] = []

    def measure(tflite: bytes) -> Evidence:
        seen.extend([held_out, val])
        return Evidence(held_out=_litert_outputs(tflite, held_out), val=_litert_outputs(tflite, val))

    float32 = convert(model, "float32")
    reference = Evidence(held_out=_litert_outputs(float32, held_out), val=_litert_outputs(float32, val))
    result = quantize_with_accuracy_control(calibrated, measure, reference, toy_labels(val), positive_index=1,
                                            max_drop=-1.0, max_float_layers=1, candidates=2)
    noisiest = [error.tensor for error in calibrated.layer_errors()[:2]]
    order = calibrated.execution_order()  # every int8 op in the order the model runs them; the head is float
    assert sorted(name for name, _ in order) == sorted(error.tensor for error in calibrated.layer_errors())
    assert [name.split("/")[1] for name, _ in order] == ["rescaling", "rescaling", "conv2d", "conv2d_1"]
    assert [op for _, op in order][-2:] == ["CONV_2D", "CONV_2D"]
    # full int8, then each candidate alone (one that feeds on the uint8 input cannot be float: skipped)
    assert result.ranking == "held-out agreement" and len(result.attempts) in (2, 3)
    assert all(image is held_out or image is val for image in seen)
    full = result.full.held_out
    assert full.logit_error > 0 and full.cam_correlation is not None
    alone = {a.float_layers[0]: a.held_out.disagreement for a in result.attempts if a.float_layers}
    assert alone and set(alone) <= set(noisiest)
    if result.float_layers:
        (kept,) = result.kept_float
        assert kept.tensor in noisiest and kept.noise_rank in (1, 2) and kept.reason.startswith(kept.op)
        assert kept.held_out_disagreement_alone == pytest.approx(alone[kept.tensor], abs=1e-6)
    assert result.within_budget or result.float_layers == () or result.chosen.held_out.disagreement < full.disagreement


def test_an_op_whose_float_does_not_help_on_held_out_is_never_kept_float():
    calibration = _Calibration({"a": 1.0, "b": 1.0, "c": 1.0}, ["a", "b", "c", "d"])
    result = _run(calibration, max_float_layers=4, candidates=4)
    assert "d" not in result.float_layers  # harmless: keeping it float changes nothing
    assert not any("d" in a.float_layers for a in result.attempts if len(a.float_layers) > 1)  # nor is it tried
    assert all(kept.held_out_disagreement_alone < kept.held_out_disagreement_full for kept in result.kept_float)

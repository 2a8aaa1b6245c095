"""Each variant's own temperature: training's calibration rule, applied to what each exported file outputs.

Training folds the temperature that float32's validation logits justify (`decide_temperature`) into the
model, so every variant starts from it. But int8 moves logits, and float32's temperature is not
evidence about them: on one PneumoniaMNIST run int8's test ECE was 0.186 against float32's 0.039 with
the same temperature, 0.038 with its own (benchmarks/RESULTS.md, "A temperature per variant").
So each variant's validation logits (its raw CAM averaged over cells, through the real interpreter)
go through the same rule: an extra temperature ships only where held-out folds say it helps, and it
is folded into the file itself (`scale_class_scores`), so a `.tflite` or `.onnx` used without
medtk.runtime gives the same probabilities. The operating point is then chosen on the rescaled outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from medtk.runtime.metadata import ModelCalibration
from medtk.schema.metrics import CalibrationDecision


@dataclass(frozen=True)
class VariantTemperature:
    decision: CalibrationDecision  # the rule on this variant's validation logits (training's T already in them)
    calibration: ModelCalibration  # what the file carries and why: training's temperature x the decision's

    @property
    def factor(self) -> float:
        """What the class scores are multiplied by (1 / the extra temperature; 1.0: unchanged)."""
        return 1.0 / self.decision.temperature


def decide_variant_temperature(val_cams: np.ndarray, val_labels: np.ndarray, training: ModelCalibration,
                               seed: int = 0) -> VariantTemperature:
    """The calibration rule on one variant's validation outputs (`val_cams`: raw CAMs (N, h, w, K))."""
    from medtk.clinical.calibration import decide_temperature

    trained = training.temperature
    keeps = "this variant keeps training's temperature"
    if len(val_labels) == 0:
        decision = CalibrationDecision(applied=False, temperature=1.0, fitted_temperature=None,
                                       reason=f"not fitted ({keeps}): no validation images")
    else:
        logits = np.asarray(val_cams, dtype=np.float64).mean(axis=(1, 2))
        decision = decide_temperature(logits, val_labels, seed=seed, otherwise=keeps)
    if not decision.applied:
        reason = f"{training.reason or f'training temperature {trained:.3f}'}; for this variant: {decision.reason}"
        return VariantTemperature(decision, replace(training, reason=reason))
    total = trained * decision.temperature
    reason = (f"temperature {total:.3f} = training's {trained:.3f} x this variant's own {decision.temperature:.3f} "
              f"({decision.reason})")
    return VariantTemperature(decision, ModelCalibration(temperature=total, applied=True, reason=reason,
                                                         fitted_temperature=trained * decision.fitted_temperature))


def scale_class_scores(model: bytes, file_format: str, factor: float) -> bytes:
    """The exported file with its class scores multiplied by `factor` (`.tflite` or `.onnx`)."""
    if file_format == "onnx":
        from medtk.compress.onnx_export import scale_class_scores as scale_onnx

        return scale_onnx(model, factor)
    from medtk.runtime.flatbuffer import scale_class_scores as scale_tflite

    return scale_tflite(model, factor)

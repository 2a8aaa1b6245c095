"""Keras medtk model -> `.tflite` bytes, one small function per converter, builtin ops only.

Each variant of `medtk.variants` names the converter that makes it (fine-tuned int8 variants reuse
`int8`). Every variant keeps the deployable-model contract (docs/ARCHITECTURE.md): raw-pixel input named `pixels`
(`uint8` for int8, `float32` otherwise), outputs `probs` and `cam` addressed by signature name, float
outputs (the runtime dequantizes anyway, but float outputs keep the CAM's range intact). int8 keeps
only its final softmax in float, so probabilities are not cut to 1/256 steps.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from medtk.errors import DataError
from medtk.runtime.flatbuffer import uint8_input
from medtk.train.tfenv import tensorflow


def _converter(model):
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _float32(model, calibration):
    return _converter(model)


def _float16(model, calibration):
    tf = tensorflow()
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter


def _dynamic(model, calibration):
    tf = tensorflow()
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter


def _int8(model, calibration):
    """The full-integer converter (uint8 raw-pixel input, float outputs); `convert` runs it through
    `_int8_float_softmax` so the final softmax stays float."""
    tf = tensorflow()
    if calibration is None:
        raise DataError("int8 conversion needs calibration images; the calibration set is empty")
    batches = [np.asarray(image, dtype=np.float32)[None] for image in calibration]
    if not batches:
        raise DataError("int8 conversion needs calibration images; the calibration set is empty")
    size, channels = batches[0].shape[1:3], batches[0].shape[3]
    # Pin the input range to exactly 0..255 so uint8 pixels map 1:1 (scale 1, zero point 0).
    batches.append(np.zeros((1, *size, channels), np.float32))
    batches.append(np.full((1, *size, channels), 255.0, np.float32))
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([batch] for batch in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    return converter


def _int8_float_softmax(model, calibration) -> bytes:
    """Full int8 except the final SOFTMAX, which stays float (DEQUANTIZE -> SOFTMAX, builtin ops).

    An 8-bit softmax gives probabilities in steps of 1/256: a confident model's outputs pile up at 0
    and 1, ties cost AUC (-0.018 on the demo model) and high-confidence thresholds become impossible,
    while the int8 logits still rank like float32. The QuantizationDebugger's denylist is TFLite's
    selective quantization; it returns a float32 input, which `uint8_input` turns back into uint8.
    """
    tf = tensorflow()
    converter = _int8(model, calibration)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=converter.representative_dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["SOFTMAX"]),
    )
    return uint8_input(debugger.get_nondebug_quantized_model())


_BUILDERS: dict[str, Callable] = {"float32": _float32, "float16": _float16, "dynamic": _dynamic, "int8": _int8}


def convert(model, converter: str, calibration: Iterable[np.ndarray] | None = None) -> bytes:
    """Convert `model` with the named converter (`Variant.converter`); `calibration` = raw-pixel
    images (S, S, C) for int8.

    For a QAT model, int8 conversion uses the ranges learned in training; calibration images still
    fix the input range.
    """
    if converter not in _BUILDERS:
        raise ValueError(f"unknown converter {converter!r}; expected one of {', '.join(_BUILDERS)}")
    calibration = list(calibration) if calibration is not None else None
    if converter == "int8":
        return _int8_float_softmax(model, calibration)
    return _BUILDERS[converter](model, calibration).convert()

"""Keras medtk model -> `.tflite` bytes, one small function per converter, builtin ops only.

Each variant of `medtk.variants` names the converter that makes it (fine-tuned int8 variants reuse
`int8`). Every variant keeps the deployable-model contract (docs/ARCHITECTURE.md): raw-pixel input named `pixels`
(`uint8` for int8, `float32` otherwise), outputs `probs` and `cam` addressed by signature name, float
outputs (the runtime dequantizes anyway, but float outputs keep the CAM's range intact). int8 keeps
its head in float (the `cam` conv, the logits and the softmax: `Int8Calibration`), so neither the
logits nor the probabilities are cut to a few 8-bit steps.
"""

from __future__ import annotations

import csv
import io
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from medtk.errors import DataError
from medtk.runtime.flatbuffer import head_tensors, pin_pixel_ranges, uint8_input
from medtk.train.tfenv import tensorflow


@contextmanager
def _converter(model) -> Iterator:
    """A builtin-ops TFLite converter of `model`'s serving function, from a lean SavedModel.

    TFLite's `from_keras_model` saves the whole tf-keras object graph first, tracing every layer's call
    again; a SavedModel of only the variables and one `serving_default` function (`pixels` in, the
    model's named outputs out) gives the same graph and identical outputs, 2.5x faster on ResNet50 at
    224 px and 4x on a 32 px MobileNetV2 (benchmarks/RESULTS.md, "TFLite conversion").
    """
    tf = tensorflow()
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=model.input_names[0])

    def serve(pixels):
        outputs = model(pixels, training=False)
        if isinstance(outputs, dict):
            return outputs
        if tf.is_tensor(outputs):
            return {model.output_names[0]: outputs}
        return dict(zip(model.output_names, outputs))

    function = tf.function(serve, input_signature=[spec])
    root = tf.Module()
    root.model_variables = list(model.variables)  # what the function captures; the Keras objects are not saved
    with tempfile.TemporaryDirectory(prefix="medtk-savedmodel-") as folder:
        tf.saved_model.save(root, folder, signatures={"serving_default": function})
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        yield converter


def _float32(converter, calibration):
    """float32 builtin ops: the converter as `_converter` makes it."""


def _float16(converter, calibration):
    tf = tensorflow()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, calibration):
    tf = tensorflow()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, calibration):
    """The full-integer converter (uint8 raw-pixel input, float outputs), calibrated on `calibration`
    only; `Int8Calibration` then pins the raw pixels' ranges to 0..255 and keeps the class scores float."""
    tf = tensorflow()
    if calibration is None:
        raise DataError("int8 conversion needs calibration images; the calibration set is empty")
    batches = [np.asarray(image, dtype=np.float32)[None] for image in calibration]
    if not batches:
        raise DataError("int8 conversion needs calibration images; the calibration set is empty")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([batch] for batch in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32


class Int8Calibration:
    """One calibration of `model` (the slow part), then any number of int8 models from it, each with its
    own layers kept float (TFLite selective quantization: the QuantizationDebugger's `denylisted_nodes`).

    The class scores always stay float: the `cam` convolution (a 1x1 conv, K x C weights), the average
    that makes the logits, and the softmax (DEQUANTIZE -> CONV_2D -> MEAN -> SOFTMAX, builtin ops). An
    8-bit softmax gives probabilities in steps of 1/256; int8 logits are worse: their one per-tensor
    range is set by the most confident calibration image, so the uncertain images, which decide the AUC,
    get a few levels (a 3-epoch ResNet50: logits up to +-213, step 1.1, 22 distinct probabilities on 624
    test images, test AUC 0.938 -> 0.616; benchmarks/RESULTS.md, issue 22). Selective quantization
    returns a float32 input, which `uint8_input` turns back into uint8. `layer_errors` ranks the int8 ops
    by how much 8-bit arithmetic hurts each of them (`LayerError`), for `medtk.compress.accuracy_control`.
    """

    def __init__(self, model, calibration, debug: Iterable[np.ndarray] | None = None, debug_images: int = 64,
                 float_head: bool = True):
        """`debug`: the images `layer_errors` measures on, at most `debug_images` of them (each op of the
        debug model runs twice per image, in int8 and in float); by default the calibration images, but
        images that did not set the ranges also show what unseen images clip (accuracy control's).
        `float_head`: keep the class scores (the `cam` conv and the logits) float, as medtk exports."""
        tf = tensorflow()
        debug = list(calibration if debug is None else debug)[:debug_images]
        debug = [np.asarray(image, dtype=np.float32)[None] for image in debug]
        self._head: tuple[str, ...] = ()
        self._statistics: list[LayerError] | None = None
        with _converter(model) as converter:  # the debugger calibrates here; later it needs only that result
            _int8(converter, calibration)
            self._debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=lambda: ([batch] for batch in debug),
                debug_options=self._options(()),
            )
        # Raw pixels map 1:1 onto the uint8 input (scale 1, zero point 0) whatever the images spanned.
        self._debugger.calibrated_model = pin_pixel_ranges(self._debugger.calibrated_model, 0.0, 255.0)
        self._head = tuple(head_tensors(self._debugger.calibrated_model)) if float_head else ()
        self._debugger.options = self._options(())

    def _options(self, float_layers, **metrics):
        tf = tensorflow()
        nodes = [*self._head, *float_layers]
        return tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=["SOFTMAX"], denylisted_nodes=nodes or None, **metrics
        )

    def quantize(self, float_layers: Iterable[str] = ()) -> bytes:
        """The deployable int8 model (uint8 pixels, float outputs) with `float_layers` (output tensor
        names, as `layer_errors` gives them) computed in float, besides the head."""
        nodes = [*self._head, *float_layers]
        if nodes != list(self._debugger.options.denylisted_nodes or ()):
            self._debugger.options = self._options(tuple(float_layers))
        return uint8_input(self._debugger.get_nondebug_quantized_model())

    def layer_errors(self) -> list["LayerError"]:
        """Every quantized op's own error on the debug images, worst first.

        NumericVerify (TFLite's debug model) runs each op in float on its dequantized int8 inputs and
        compares with the op's int8 output, so each number is that op's local error, not the error
        accumulated from the layers before it.
        """
        return sorted(self._layer_statistics(), key=lambda error: error.noise, reverse=True)

    def execution_order(self) -> list[tuple[str, str]]:
        """(output tensor, operator) of the quantized ops in the order the model runs them (the class-score
        head excluded): accuracy control keeps the network's tail float when no op on its own is enough."""
        return [(error.tensor, error.op) for error in self._layer_statistics()]

    def _layer_statistics(self) -> list["LayerError"]:
        """The debugger's per-op rows, in the debug model's operator order (one debugger run, kept)."""
        if self._statistics is None:
            self._debugger.options = self._options((), layer_direct_compare_metrics={
                "float_std": lambda f, q, scale, zero_point: float(np.std(f)),
            })
            self._debugger.run()
            dump = io.StringIO()
            self._debugger.layer_statistics_dump(dump)
            self._statistics = [
                LayerError(tensor=row["tensor_name"], op=row["op_name"],
                           rmse=float(np.sqrt(float(row["mean_squared_error"]))), scale=float(row["scale"]),
                           float_std=float(row["float_std"]))
                for row in csv.DictReader(io.StringIO(dump.getvalue()))
            ]
        return self._statistics


@dataclass(frozen=True)
class LayerError:
    """One int8 op's local error (`Int8Calibration.layer_errors`)."""

    tensor: str  # the op's output tensor: what `Int8Calibration.quantize(float_layers=...)` takes
    op: str  # TFLite operator, e.g. CONV_2D
    rmse: float  # root mean square of (int8 output - float output on the same dequantized inputs)
    scale: float  # the output's quantization step
    float_std: float  # spread of the float output (its signal)

    @property
    def noise(self) -> float:
        """Quantization noise relative to the signal (RMSE / std of the float output); rounding alone
        gives about scale / sqrt(12) / std, so a tensor whose range is far wider than its spread
        (outliers, wrong statistics) ranks high."""
        return self.rmse / self.float_std if self.float_std > 0 else float("inf") if self.rmse > 0 else 0.0


_BUILDERS: dict[str, Callable] = {"float32": _float32, "float16": _float16, "dynamic": _dynamic, "int8": _int8}


def convert(model, converter: str, calibration: Iterable[np.ndarray] | None = None,
            float_layers: Iterable[str] = ()) -> bytes:
    """Convert `model` with the named converter (`Variant.converter`); `calibration` = raw-pixel
    images (S, S, C) for int8; `float_layers`: int8 ops (output tensor names) kept in float.

    For a QAT model, int8 conversion uses the ranges learned in training; calibration images still
    fix the input range.
    """
    if converter not in _BUILDERS:
        raise ValueError(f"unknown converter {converter!r}; expected one of {', '.join(_BUILDERS)}")
    calibration = list(calibration) if calibration is not None else None
    if converter == "int8":
        return Int8Calibration(model, calibration).quantize(float_layers)
    with _converter(model) as tflite:
        _BUILDERS[converter](tflite, calibration)
        return tflite.convert()

"""Keras medtk model -> `.onnx` bytes: float32 through tf2onnx, int8 as a QDQ graph for TensorRT.

float32: tf2onnx (the maintained converter from tf-keras) on the same Keras model the `.tflite` files
come from, so the contract is the same: one input `pixels` [1, S, S, C] float32 raw 0..255 (all
normalisation inside the graph), outputs `probs` [1, K] and `cam` [1, h, w, K] by name.

int8: ONNX Runtime's static quantization of that float graph (TFMOT's fake-quant graphs do not
convert), calibrated on the same images as the TFLite int8, in the explicit form TensorRT takes
(TensorRT 10.1+ deprecates and 11 removes implicit int8 calibration): QuantizeLinear/DequantizeLinear
pairs, weights int8 per output channel and symmetric (-127..127), activations int8 symmetric with
zero point 0 over the 99.999th percentile of |x| (`quantize_qdq`). The head stays float, as in the
TFLite int8 (convert.py): the `cam` conv, the pooling into logits and the softmax (`head_nodes`). One
per-tensor int8 range over every image's class map leaves the uncertain images, which decide the AUC,
only a few levels. So does the preprocessing that takes raw pixels to the first convolution
(`pixel_nodes`): a symmetric int8 range over 0..255 pixels has steps of 2 and clips above the brightest
calibration pixel, and the first convolution quantizes its (normalized) input anyway. TensorRT runs
unquantized layers in float. `check_tensorrt_qdq` is the explicit-quantization rule as a check, run on
every export.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from medtk.errors import DataError, ModelError

OPSET = 17  # TensorRT 10 parses opsets up to 20; 17 has per-axis QuantizeLinear (13+) and LayerNorm
INPUT_NAME = "pixels"
CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}  # ORT's names
CALIBRATION_CHUNK = 16  # images whose activations ORT holds at once while calibrating


def to_onnx(model) -> bytes:
    """The float32 ONNX of a medtk Keras model (batch 1, as the `.tflite` files)."""
    import tf2onnx

    from medtk.train.tfenv import tensorflow

    tf = tensorflow()
    size, channels = int(model.input.shape[1]), int(model.input.shape[3])
    spec = (tf.TensorSpec((1, size, size, channels), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    names = [output.name for output in proto.graph.output]
    if sorted(names) != ["cam", "probs"]:
        raise ModelError(f"tf2onnx exported outputs {names}; a medtk model has 'probs' and 'cam'")
    return proto.SerializeToString()


def quantize_qdq(float_model: bytes, calibration: Iterable[np.ndarray], method: str = "percentile") -> bytes:
    """The int8 QDQ model of `float_model`, calibrated on raw-pixel images (S, S, C); `method`: how ONNX
    Runtime turns the calibration activations into ranges (`CALIBRATION_METHODS`). `QdqCalibration`
    for more than one model from the same ranges."""
    with QdqCalibration(float_model, calibration, method) as calibrated:
        return calibrated.quantize()


class QdqCalibration:
    """One calibration of an ONNX float graph (the slow part), then any number of QDQ models from it, each
    with its own nodes kept float: ONNX Runtime's `nodes_to_exclude`, over ranges kept in its calibration
    cache. The same interface as `medtk.compress.convert.Int8Calibration` for accuracy control, without a
    ranking: ONNX Runtime gives no per-op local error (`layer_errors` is empty), so accuracy control
    goes straight to keeping the network's tail float (`execution_order`).

    Percentile (99.999th of |x|, ORT's default for it) by default: symmetric ranges from the maximum let
    one outlying activation coarsen a whole tensor, which cost one ResNet50 0.028 test AUC and halved its
    CAM correlation (benchmarks/RESULTS.md, "onnx_int8 calibration"). Its histograms are collected
    `CALIBRATION_CHUNK` images at a time: ORT otherwise holds every activation of every image (~110 MB
    per 224 px image, 34 GB for the default 300). A context manager: the cache lives in a temporary folder."""

    def __init__(self, float_model: bytes, calibration: Iterable[np.ndarray], method: str = "percentile"):
        import onnx

        images = [np.asarray(image, dtype=np.float32)[None] for image in calibration]
        if not images:
            raise DataError("int8 ONNX quantization needs calibration images; the calibration set is empty")
        self._method = method
        self._folder = tempfile.TemporaryDirectory(prefix="medtk-onnx-")
        self._source = Path(self._folder.name) / "float32.onnx"
        self._source.write_bytes(float_model)
        self._cache = Path(self._folder.name) / "ranges.json"
        proto = onnx.load_from_string(float_model)
        self._float = [*pixel_nodes(proto), *head_nodes(proto)]
        self._order = [(node.name, node.op_type) for node in proto.graph.node]
        self._activations = _fused_activations(proto)
        self._full = self._quantize((), _reader(images))  # calibrates and fills the cache

    def __enter__(self) -> "QdqCalibration":
        return self

    def __exit__(self, *exc) -> None:
        self._folder.cleanup()

    def quantize(self, float_layers: Iterable[str] = ()) -> bytes:
        """The QDQ model with `float_layers` (node names, as `execution_order` gives them) kept float,
        besides the pixel preprocessing and the head."""
        layers = tuple(float_layers)
        if not layers:
            return self._full
        fused = [self._activations[layer] for layer in layers if layer in self._activations]
        return self._quantize((*layers, *fused), None)

    def layer_errors(self) -> list:
        """No per-op ranking for ONNX (see the class docstring)."""
        return []

    def execution_order(self) -> list[tuple[str, str]]:
        """(node name, op type) of every node the full QDQ model quantized, in graph order; an activation
        that only follows one node (a Conv's Relu) goes with it, as LiteRT fuses it into the op, so that
        `--max-float-layers` counts the same ops in both formats."""
        import onnx

        quantized = onnx.load_from_string(self._full).graph.node
        producers = {output: node for node in quantized for output in node.output}
        fed = {node.name for node in quantized if node.op_type not in ("QuantizeLinear", "DequantizeLinear")
               and any(producers.get(name) is not None and producers[name].op_type == "DequantizeLinear"
                       and producers[name].input[0] in producers for name in node.input)}
        fused = set(self._activations.values())
        return [(name, op) for name, op in self._order if name in fed and name not in self._float and name not in fused]

    def _quantize(self, float_layers: tuple[str, ...], reader) -> bytes:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        target = Path(self._folder.name) / "int8.onnx"
        quantize_static(
            str(self._source), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[self._method]),
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=[*self._float, *float_layers], calibration_cache_path=str(self._cache),
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           # despite its name: any method, in chunks (unused when the cache has the ranges)
                           "CalibStridedMinMax": _chunk(len(reader)) if reader is not None else 1},
        )
        quantized = target.read_bytes()
        problems = check_tensorrt_qdq(quantized)
        if problems:
            raise ModelError(f"the int8 ONNX graph breaks TensorRT's explicit-quantization rules: {problems[0]}")
        return quantized


ACTIVATIONS = ("Relu", "Clip", "LeakyRelu")  # what LiteRT fuses into the op before it


def _fused_activations(proto) -> dict[str, str]:
    """{node: the activation node that is its output's only consumer} for the graph's nodes."""
    consumers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    fused = {}
    for node in proto.graph.node:
        after = [consumer for output in node.output for consumer in consumers.get(output, ())]
        if node.op_type not in ACTIVATIONS and len(after) == 1 and after[0].op_type in ACTIVATIONS:
            fused[node.name] = after[0].name
    return fused


def _reader(images: list[np.ndarray]):
    """ONNX Runtime's CalibrationDataReader over `images`: all of them, or the range its strided
    collection asks for (`set_range`)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.set_range(0, len(images))

        def __len__(self) -> int:
            return len(images)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._batches = iter(images[start_index:end_index])

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    return Reader()


def _chunk(count: int) -> int:
    """The largest number of images up to CALIBRATION_CHUNK that divides `count` (ORT's strided
    collection needs equal chunks)."""
    return max(size for size in range(1, min(count, CALIBRATION_CHUNK) + 1) if count % size == 0)


def pixel_nodes(proto) -> list[str]:
    """Names of the nodes between the raw-pixel input and the first Conv (the gray-to-RGB concatenation,
    channel reversal, mean subtraction, layout transposes): they stay float, and the first Conv's
    quantized input is the normalized image."""
    if not any(INPUT_NAME in node.input for node in proto.graph.node):
        raise ModelError(f"the ONNX graph has no node reading {INPUT_NAME!r}")
    reached, frontier = set(), {INPUT_NAME}
    while frontier:
        step = [n for n in proto.graph.node
                if n.name not in reached and n.op_type != "Conv" and frontier.intersection(n.input)]
        reached.update(n.name for n in step)
        frontier = {output for n in step for output in n.output}
    return [n.name for n in proto.graph.node if n.name in reached]


def head_nodes(proto) -> list[str]:
    """Names of the nodes that compute the class scores: the Conv whose output becomes `cam` (through
    layout nodes such as tf2onnx's Transpose) and every node downstream of it (pooling, softmax)."""
    producers = {output: node for node in proto.graph.node for output in node.output}
    node = producers.get("cam")
    while node is not None and node.op_type != "Conv":
        node = producers.get(node.input[0])
    if node is None:
        raise ModelError("the ONNX graph has no Conv producing 'cam'; a medtk model computes its CAM with one")
    head, frontier = {node.name}, set(node.output)
    while frontier:  # the graph is topologically sorted, but a closure does not depend on it
        reached = [n for n in proto.graph.node if n.name not in head and frontier.intersection(n.input)]
        head.update(n.name for n in reached)
        frontier = {output for n in reached for output in n.output}
    return [n.name for n in proto.graph.node if n.name in head]


def scale_class_scores(model: bytes, factor: float) -> bytes:
    """The ONNX model with its class scores multiplied by `factor` > 0 (a temperature of 1 / factor):
    the `cam` Conv's weight and bias scaled (their DequantizeLinear scales when stored in int8), and the
    scale of every QuantizeLinear/DequantizeLinear the scaled scores pass through; the same rewrite
    `medtk.runtime.flatbuffer.scale_class_scores` makes in a `.tflite`."""
    import onnx
    from onnx import numpy_helper

    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"scale_class_scores: factor must be a finite number > 0, got {factor!r}")
    proto = onnx.load_from_string(model)
    producers = {output: node for node in proto.graph.node for output in node.output}
    initializers = {tensor.name: tensor for tensor in proto.graph.initializer}
    conv = next(node for node in proto.graph.node if node.name == head_nodes(proto)[0])
    uses: dict[str, int] = {}
    for node in proto.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1

    def scale(node, position: int) -> None:
        name = node.input[position]
        if name not in initializers:
            raise ModelError(f"scale_class_scores: {name!r} of {node.name!r} is computed, not stored")
        values = numpy_helper.to_array(initializers[name])
        if values.dtype.kind != "f":
            raise ModelError(f"scale_class_scores: {name!r} holds {values.dtype}, not a float to scale")
        if uses[name] > 1:  # shared with another node: that one keeps the original
            name = f"{name}__scaled_{len(initializers)}"
            node.input[position] = name
        tensor = numpy_helper.from_array((values * factor).astype(values.dtype), name)
        if name in initializers:
            initializers[name].CopyFrom(tensor)
        else:
            proto.graph.initializer.append(tensor)
            initializers[name] = proto.graph.initializer[-1]

    for position in (1, 2):
        if position >= len(conv.input) or not conv.input[position]:
            continue
        stored = producers.get(conv.input[position])
        if stored is not None and stored.op_type == "DequantizeLinear":
            scale(stored, 1)
        else:
            scale(conv, position)
    commutes = {"Reshape", "Transpose", "Squeeze", "Flatten", "Identity", "GlobalAveragePool", "ReduceMean",
                "QuantizeLinear", "DequantizeLinear"}
    frontier, seen = set(conv.output), set()
    while frontier:  # the scores up to whatever reads them (the Softmax): their Q/DQ ranges scale with them
        step = [node for node in proto.graph.node if node.name not in seen and node.op_type in commutes
                and node.input and node.input[0] in frontier]
        seen.update(node.name for node in step)
        for node in step:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                scale(node, 1)
        frontier = {output for node in step for output in node.output}
    return proto.SerializeToString()


def check_tensorrt_qdq(model: bytes) -> list[str]:
    """What in a QDQ graph TensorRT's explicit quantization would refuse (empty: nothing).

    Every QuantizeLinear has zero point 0 (symmetric); every int8 weight is in [-127, 127]; a weight
    quantized per channel is quantized along its output channels (axis 0 of a Conv weight); the
    onnx checker passes; at least one tensor is quantized.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model)
    onnx.checker.check_model(proto)
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    consumers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    problems, quantized = [], 0
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear":
            quantized += 1
            zero = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if zero is not None and np.any(zero != 0):
                problems.append(f"QuantizeLinear {node.name!r} has zero point {zero.ravel()[:4].tolist()}, not 0")
        if node.op_type != "DequantizeLinear" or node.input[0] not in constants:
            continue
        weights = constants[node.input[0]]
        if weights.dtype == np.int8 and weights.size and int(weights.min()) < -127:
            problems.append(f"int8 weight {node.input[0]!r} holds -128 (TensorRT needs [-127, 127])")
        zero = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is not None and np.any(zero != 0):
            problems.append(f"weight {node.input[0]!r} has a non-zero zero point")
        scale = constants.get(node.input[1])
        if scale is not None and scale.size > 1:
            axis = next((attribute.i for attribute in node.attribute if attribute.name == "axis"), 1)
            for consumer in consumers.get(node.output[0], []):
                if consumer.op_type == "Conv" and list(consumer.input).index(node.output[0]) == 1 \
                        and axis != 0:
                    problems.append(f"weight {node.input[0]!r} is quantized along axis {axis}, not its output channels")
    if not quantized:
        problems.append("no QuantizeLinear: nothing is int8")
    return problems

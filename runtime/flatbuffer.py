"""Everything that reads or rewrites a `.tflite` flatbuffer, without TensorFlow.

The schema classes come from `ai_edge_litert` (its `schema_py_generated`), imported on first use.
One module, so the format's rules exist once: the 'TFL3' identifier, the named metadata buffers, the
legacy weights checksum, the operator-code rule, and the rewrites medtk makes (embedding a named
buffer; pinning the ranges of a calibrated model's raw-pixel tensors; turning a float input that feeds
QUANTIZE into a uint8 input). See docs/ARCHITECTURE.md.

The integrity digest over the whole file (everything but the seal slot that holds it) is
`integrity.py`'s; this module only says where a named buffer's bytes lie in the file
(`named_buffer_span`), so the seal can be found and filled in place without repacking.
`weights_sha256` is the schema-2 checksum (buffers only), still written and checked for old files.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import numpy as np

from medtk.errors import ModelError

TFLITE_IDENTIFIER = b"TFL3"

ModelSource = bytes | bytearray | str | Path


def schema():
    """The TFLite flatbuffer schema classes (LiteRT ships them)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def load(model: ModelSource, name: str = "model") -> tuple[bytes, str]:
    """(bytes, name for messages) of a model given as bytes or a path; the identifier is checked."""
    if not isinstance(model, (bytes, bytearray)):
        name = str(model)
        model = Path(model).read_bytes()
    check_identifier(bytes(model), name)
    return bytes(model), name


def check_identifier(model: bytes, name: str) -> None:
    """Refuse anything that is not a TFLite flatbuffer before it reaches the interpreter."""
    if len(model) < 8 or model[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{name}: not a TFLite model (no 'TFL3' flatbuffer identifier)")


def builtin_code(opcode: Any) -> int:
    """The builtin operator of an operator code (a reader `OperatorCode` or an object-API `OperatorCodeT`).

    Schema v3a stores codes above 127 in `builtinCode` and keeps `deprecatedBuiltinCode` for older
    files; the larger of the two is the operator.
    """
    if hasattr(opcode, "BuiltinCode"):
        return max(int(opcode.BuiltinCode()), int(opcode.DeprecatedBuiltinCode()))
    return max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))


def operator_codes(model: ModelSource, subgraph: int = 0) -> list[int]:
    """The builtin code of every operator of `subgraph`, in execution order."""
    model, _ = load(model)
    root = schema().Model.GetRootAsModel(model, 0)
    codes = [builtin_code(root.OperatorCodes(i)) for i in range(root.OperatorCodesLength())]
    graph = root.Subgraphs(subgraph)
    return [codes[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength())]


def head_tensors(model: ModelSource) -> list[str]:
    """Names of the tensors that carry the class scores: the signature output `cam` and every SOFTMAX's
    input (the logits). The int8 export keeps these float: one per-tensor int8 range over every image's
    logits leaves the uncertain images, which decide the AUC, only a few levels."""
    model, _ = load(model)
    s = schema()
    root = s.Model.GetRootAsModel(model, 0)
    graph = root.Subgraphs(0)
    indices = []
    for i in range(root.SignatureDefsLength()):
        signature = root.SignatureDefs(i)
        indices += [signature.Outputs(j).TensorIndex() for j in range(signature.OutputsLength())
                    if _text(signature.Outputs(j).Name()) == "cam"]
    codes = [builtin_code(root.OperatorCodes(i)) for i in range(root.OperatorCodesLength())]
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if codes[op.OpcodeIndex()] == s.BuiltinOperator.SOFTMAX:
            indices.append(op.Inputs(0))
    return [_text(graph.Tensors(index).Name()) for index in dict.fromkeys(indices)]


def count_macs(model: ModelSource) -> int:
    """Multiply-accumulates of one inference (batch 1) over CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
    and TRANSPOSE_CONV: the work that device estimates scale by, to first order."""
    model, _ = load(model)
    tflite = schema()
    ops = tflite.BuiltinOperator
    root = tflite.Model.GetRootAsModel(model, 0)
    codes = [builtin_code(root.OperatorCodes(i)) for i in range(root.OperatorCodesLength())]
    total = 0
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)

        def shape(index: int) -> np.ndarray:
            return graph.Tensors(index).ShapeAsNumpy().astype(np.int64)

        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = codes[op.OpcodeIndex()]
            if code == ops.CONV_2D:
                out, weights = shape(op.Outputs(0)), shape(op.Inputs(1))  # weights: [O, kh, kw, I]
                total += int(np.prod(out[1:]) * np.prod(weights[1:]))
            elif code == ops.DEPTHWISE_CONV_2D:
                out, weights = shape(op.Outputs(0)), shape(op.Inputs(1))  # weights: [1, kh, kw, O]
                total += int(np.prod(out[1:]) * weights[1] * weights[2])
            elif code == ops.FULLY_CONNECTED:
                weights = shape(op.Inputs(1))  # [units, inputs]
                total += int(np.prod(weights))
            elif code == ops.TRANSPOSE_CONV:
                inp, weights = shape(op.Inputs(2)), shape(op.Inputs(1))  # weights: [O, kh, kw, I]
                total += int(np.prod(inp[1:]) * np.prod(weights[:3]))
    return total


def read_named_buffer(model: ModelSource, name: str) -> bytes | None:
    """The content of the metadata buffer called `name`, or None when the model has none."""
    model, label = load(model)
    span = named_buffer_span(model, name, label)
    return None if span is None else model[span[0] : span[1]]


def named_buffer_span(model: bytes, name: str, label: str = "model") -> tuple[int, int] | None:
    """(start, end) byte offsets in `model` of the metadata buffer called `name`, or None.

    Every offset and length read from the file is checked against its size first, so a corrupt or
    hostile file is a one-line `ModelError`, never a long loop or an out-of-bounds read.
    """
    import flatbuffers

    size = len(model)
    try:
        root = schema().Model.GetRootAsModel(model, 0)
        count, buffers = root.MetadataLength(), root.BuffersLength()
        if count * 4 > size or buffers * 4 > size:
            raise ValueError("vector length beyond the end of the file")
        for i in range(count):
            entry = root.Metadata(i)
            if _text(entry.Name()) != name:
                continue
            index = entry.Buffer()
            if not 0 <= index < buffers:
                raise ValueError(f"metadata {name!r} points at buffer {index} of {buffers}")
            table = root.Buffers(index)._tab
            field = flatbuffers.number_types.UOffsetTFlags.py_type(table.Offset(4))
            if field == 0:
                return (0, 0)
            start, length = table.Vector(field), table.VectorLen(field)
            if not 0 <= start <= start + length <= size:
                raise ValueError("buffer beyond the end of the file")
            return start, start + length
    except (IndexError, ValueError, TypeError, OverflowError, UnicodeDecodeError, struct.error) as error:
        raise ModelError(f"{label}: corrupt TFLite flatbuffer ({type(error).__name__}: {error})") from None
    return None


def weights_sha256(model: bytes) -> str:
    """The schema-2 checksum: sha256 over the model's buffers (weights and constants), skipping the
    metadata buffers. It misses quantization parameters, the graph and the metadata, so it is only
    checked for files exported before the seal (integrity.py); new files carry it for older readers."""
    root = schema().Model.GetRootAsModel(model, 0)
    skip = {root.Metadata(i).Buffer() for i in range(root.MetadataLength())}
    digest = hashlib.sha256()
    for index in range(root.BuffersLength()):
        if index in skip:
            continue
        buffer = root.Buffers(index)
        if buffer.DataLength():
            digest.update(buffer.DataAsNumpy().tobytes())
        elif buffer.Size():  # data stored after the flatbuffer (models over 2 GB)
            digest.update(model[buffer.Offset() : buffer.Offset() + buffer.Size()])
    return digest.hexdigest()


def embed_named_buffer(model: bytes, name: str, data: bytes) -> bytes:
    """The model with a metadata buffer `name` holding `data`, replacing any earlier one of that name."""
    check_identifier(model, "model")
    tflite = schema()
    tree = tflite.ModelT.InitFromObj(tflite.Model.GetRootAsModel(model, 0))
    tree.metadata = tree.metadata or []
    entry = next((m for m in tree.metadata if _text(m.name) == name), None)
    if entry is None:  # a new buffer; an existing one is overwritten, so no orphan is left to count as weights
        tree.buffers.append(tflite.BufferT())
        entry = tflite.MetadataT()
        entry.name = name
        entry.buffer = len(tree.buffers) - 1
        tree.metadata.append(entry)
    buffer = tree.buffers[entry.buffer]
    buffer.data = np.frombuffer(data, dtype=np.uint8)
    buffer.offset = buffer.size = 0
    return _pack(tree, len(model) + len(data) + 4096)


def pin_pixel_ranges(calibrated: bytes, low: float, high: float) -> bytes:
    """Record [low, high] as the range of every tensor that holds raw pixels in a calibrated (not yet
    quantized) model: the input, and what ops that only move its values (the gray-to-RGB concatenation,
    the channel reversal, reshapes) make of it.

    Calibration records each tensor's min and max over the images it ran; int8 quantization derives
    every scale from them. Raw pixels must keep their full range, 0..255 mapping 1:1 onto uint8, but
    images that span it would also set every other range (a black image's activations lie far outside
    real ones: 1.6-2x beyond them deep in a 3-epoch ResNet50, so 1.6-2x the rounding step). And the input
    alone is not enough: the quantizer gives a concatenation or slice the scale of its operands, so a
    calibration set whose brightest pixel is 247 made the input's scale 247/255. (The calibrator also
    records, for a tensor a later op overwrites in place, that op's range: the channel reversal's
    record held the normalized minimum -123.68. Pinning replaces it.)
    """
    tflite = schema()
    tree = tflite.ModelT.InitFromObj(tflite.Model.GetRootAsModel(calibrated, 0))
    graph = tree.subgraphs[0]
    ops = tflite.BuiltinOperator
    moves = {ops.CONCATENATION, ops.STRIDED_SLICE, ops.SLICE, ops.RESHAPE, ops.TRANSPOSE, ops.GATHER, ops.PACK,
             ops.SPLIT, ops.SQUEEZE, ops.EXPAND_DIMS}
    pixels = set(graph.inputs)
    for op in graph.operators:
        if builtin_code(tree.operatorCodes[op.opcodeIndex]) not in moves:
            continue
        data = [index for index in op.inputs if index >= 0 and not _constant(tree, graph.tensors[index])]
        if data and all(index in pixels for index in data):  # constants: a slice's bounds, a split's axis
            pixels.update(index for index in op.outputs)
    for index in pixels:
        tensor = graph.tensors[index]
        if tensor.quantization is None or tensor.quantization.min is None:
            raise ValueError(f"pin_pixel_ranges: {_text(tensor.name)} has no calibrated range; calibrate first")
        tensor.quantization.min = [float(low)]
        tensor.quantization.max = [float(high)]
    return _pack(tree, len(calibrated) + 1024)


def scale_class_scores(model: bytes, factor: float) -> bytes:
    """The model with its class scores (the `cam` output and the logits averaged from it) multiplied by
    `factor` > 0: softmax(factor x logits), a temperature of 1 / factor folded into the file.

    The `cam` output's convolution (a 1x1 conv, no activation) gets its weights and bias scaled in
    whatever form they are stored: float32 or float16 data, or int8/int32 data whose quantization scale
    is scaled instead (dynamic-range and full-int8 variants). A quantized output has its scale scaled,
    and so has every quantized tensor that ops which commute with scaling (MEAN, reshapes, QUANTIZE,
    DEQUANTIZE) make from it, so an int8 MEAN -> SOFTMAX head sees the same int8 values meaning
    `factor` times more. The probabilities change as a temperature changes them; nothing else does.
    """
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"scale_class_scores: factor must be a finite number > 0, got {factor!r}")
    check_identifier(model, "model")
    tflite = schema()
    ops = tflite.BuiltinOperator
    tree = tflite.ModelT.InitFromObj(tflite.Model.GetRootAsModel(model, 0))
    graph = tree.subgraphs[0]
    def code(op) -> int:
        return builtin_code(tree.operatorCodes[op.opcodeIndex])

    producer = {index: op for op in graph.operators for index in op.outputs}
    cams = [out.tensorIndex for signature in tree.signatureDefs or [] for out in signature.outputs or []
            if _text(out.name) == "cam"]
    if len(cams) != 1:
        raise ModelError("scale_class_scores: the model has no single signature output 'cam'")
    conv = producer.get(cams[0])
    if conv is not None and code(conv) == ops.DEQUANTIZE:
        conv = producer.get(conv.inputs[0])
    if conv is None or code(conv) != ops.CONV_2D:
        raise ModelError("scale_class_scores: the 'cam' output is not made by a convolution")
    options = conv.builtinOptions
    if options is not None and options.fusedActivationFunction != tflite.ActivationFunctionType.NONE:
        raise ModelError("scale_class_scores: the 'cam' convolution has an activation; scaling would not commute")
    for index in conv.inputs[1:]:
        if index >= 0:
            _scale_constant(tree, producer, index, factor)
    scaled, queue = set(), [conv.outputs[0]]
    commutes = {ops.MEAN, ops.RESHAPE, ops.SQUEEZE, ops.QUANTIZE, ops.DEQUANTIZE, ops.AVERAGE_POOL_2D}
    while queue:
        index = queue.pop()
        if index in scaled:
            continue
        scaled.add(index)
        quantization = graph.tensors[index].quantization
        if quantization is not None and quantization.scale is not None and len(quantization.scale):
            quantization.scale = [float(value) * factor for value in quantization.scale]
        queue += [op.outputs[0] for op in graph.operators if list(op.inputs)[:1] == [index] and code(op) in commutes]
    return _pack(tree, len(model) + 1024)


def _scale_constant(tree, producer: dict, index: int, factor: float) -> None:
    """Multiply a weight or bias tensor's values by `factor`: its quantization scale when it has one, else
    its float32/float16 data (following a DEQUANTIZE to the stored constant); a buffer that other tensors
    share is copied first."""
    tflite = schema()
    graph = tree.subgraphs[0]
    tensor = graph.tensors[index]
    quantization = tensor.quantization
    if quantization is not None and quantization.scale is not None and len(quantization.scale):
        quantization.scale = [float(value) * factor for value in quantization.scale]
        return
    made_by = producer.get(index)
    if made_by is not None:
        if builtin_code(tree.operatorCodes[made_by.opcodeIndex]) != tflite.BuiltinOperator.DEQUANTIZE:
            raise ModelError(f"scale_class_scores: {_text(tensor.name)} is computed, not stored")
        _scale_constant(tree, producer, made_by.inputs[0], factor)
        return
    dtypes = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16}
    buffer = tree.buffers[tensor.buffer] if 0 < tensor.buffer < len(tree.buffers) else None
    if tensor.type not in dtypes or buffer is None or buffer.data is None or not len(buffer.data):
        raise ModelError(f"scale_class_scores: {_text(tensor.name)} holds no float data to scale")
    values = np.frombuffer(np.asarray(buffer.data, dtype=np.uint8).tobytes(), dtype=dtypes[tensor.type]) * factor
    data = np.frombuffer(values.astype(dtypes[tensor.type]).tobytes(), dtype=np.uint8)
    if sum(other.buffer == tensor.buffer for other in graph.tensors) > 1:
        tree.buffers.append(tflite.BufferT())
        tensor.buffer = len(tree.buffers) - 1
    tree.buffers[tensor.buffer].data = data


def _constant(tree, tensor) -> bool:
    """Whether `tensor` has data in the file (a weight, a shape, a slice's bounds), not a computed value."""
    buffer = tree.buffers[tensor.buffer] if 0 < tensor.buffer < len(tree.buffers) else None
    return buffer is not None and (buffer.data is not None and len(buffer.data) > 0 or bool(buffer.size))


def uint8_input(model: bytes) -> bytes:
    """Make a float input that feeds straight into QUANTIZE(int8) a uint8 input (zero point + 128).

    Selective quantization (TFLite's QuantizationDebugger) returns a float32 input; the deployable
    model contract wants raw uint8 pixels for int8 models, 1:1 (scale 1, zero point 0), or nothing.
    """
    tflite = schema()
    tree = tflite.ModelT.InitFromObj(tflite.Model.GetRootAsModel(model, 0))
    graph = tree.subgraphs[0]
    for index in graph.inputs:
        tensor = graph.tensors[index]
        consumers = [op for op in graph.operators if index in list(op.inputs)]
        quantize = [op for op in consumers
                    if builtin_code(tree.operatorCodes[op.opcodeIndex]) == tflite.BuiltinOperator.QUANTIZE]
        if tensor.type != tflite.TensorType.FLOAT32 or len(quantize) != len(consumers) or not quantize:
            raise ValueError("selective int8 conversion: input does not feed a QUANTIZE op")
        target = graph.tensors[quantize[0].outputs[0]].quantization
        params = tflite.QuantizationParametersT()
        params.scale = [float(target.scale[0])]
        params.zeroPoint = [int(target.zeroPoint[0]) + 128]
        if (params.scale[0], params.zeroPoint[0]) != (1.0, 0):  # raw pixels, 1:1; see pin_pixel_ranges
            raise ModelError(f"int8 conversion gave the uint8 input scale {params.scale[0]:.6g} and zero point "
                             f"{params.zeroPoint[0]}; raw pixels need scale 1 and zero point 0")
        tensor.type = tflite.TensorType.UINT8
        tensor.quantization = params
    return _pack(tree, len(model) + 1024)


def _pack(tree, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint)
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _text(value: bytes | str | None) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")

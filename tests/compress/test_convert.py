"""int8 conversion keeps the raw-uint8 interface and a float softmax (probabilities keep resolution)."""

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from medtk.compress.convert import convert
from medtk.runtime.flatbuffer import builtin_code
from medtk.runtime.flatbuffer import operator_codes as _ops
from medtk.train.model import ModelSpec, build_classifier


def test_int8_has_uint8_pixels_and_a_float_head():
    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=2))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (32, 32, 1)).astype(np.uint8) for _ in range(8)]
    tflite = convert(model, "int8", calibration)
    interpreter = Interpreter(model_content=tflite)
    (pixels,) = interpreter.get_input_details()
    assert pixels["dtype"] == np.uint8 and pixels["quantization"] == (1.0, 0)
    runner = interpreter.get_signature_runner()
    out = runner(pixels=calibration[0][None])
    assert set(out) == {"probs", "cam"} and out["probs"].dtype == np.float32
    ops = _ops(tflite)
    softmax = schema.BuiltinOperator.SOFTMAX
    assert softmax in ops and schema.BuiltinOperator.DEQUANTIZE in ops
    root = schema.Model.GetRootAsModel(tflite, 0)
    graph = root.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if _ops(tflite)[i] == softmax:
            assert graph.Tensors(op.Inputs(0)).Type() == schema.TensorType.FLOAT32
    # the class scores are float too: the cam conv reads dequantized features, its map and the logits are float32
    cam = runner.get_output_details()["cam"]
    assert out["cam"].dtype == np.float32 and cam["quantization"] == (0.0, 0)
    convs = [graph.Operators(i) for i, code in enumerate(ops) if code == schema.BuiltinOperator.CONV_2D]
    assert graph.Tensors(convs[-1].Inputs(0)).Type() == schema.TensorType.FLOAT32
    assert graph.Tensors(convs[-1].Outputs(0)).Type() == schema.TensorType.FLOAT32
    assert sum(graph.Tensors(c.Outputs(0)).Type() == schema.TensorType.INT8 for c in convs) > 10  # the backbone stays int8


@pytest.mark.slow
def test_layers_named_by_the_debugger_stay_float_and_the_contract_holds():
    from medtk.compress.convert import Int8Calibration

    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=2))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (32, 32, 1)).astype(np.uint8) for _ in range(6)]
    calibrated = Int8Calibration(model, calibration, debug_images=3)
    errors = calibrated.layer_errors()
    assert errors and all(a.noise >= b.noise for a, b in zip(errors, errors[1:]))
    assert {error.op for error in errors} >= {"CONV_2D"}
    full, mixed = calibrated.quantize(), calibrated.quantize([e.tensor for e in errors[:2]])
    count = lambda model, code: sum(1 for op in _ops(model) if op == code)  # noqa: E731
    assert count(mixed, schema.BuiltinOperator.DEQUANTIZE) > count(full, schema.BuiltinOperator.DEQUANTIZE)
    for tflite in (full, mixed):
        (pixels,) = Interpreter(model_content=tflite).get_input_details()
        assert pixels["dtype"] == np.uint8 and pixels["quantization"] == (1.0, 0)
        out = Interpreter(model_content=tflite).get_signature_runner()(pixels=calibration[0][None])
        assert out["probs"].dtype == np.float32 and out["probs"].sum() == pytest.approx(1.0, abs=0.02)


def test_int8_ranges_come_from_the_calibration_images_alone():
    """Every activation range is what the calibration images produce; only the raw pixels' are pinned to
    0..255, so the uint8 input keeps scale 1 though no calibration image reaches 0 or 255. Calibrating
    on extra black and white images (to span the pixel range) widened every range in the network to
    their out-of-distribution activations and cost a ResNet50 0.025 test AUC; pinning the input alone
    left its scale at brightest/255 (the concatenation after it set it)."""
    from medtk.compress.convert import Int8Calibration

    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=2))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(60, 190, (32, 32, 1)).astype(np.uint8) for _ in range(6)]
    int8 = Int8Calibration(model, calibration)
    (pixels,) = Interpreter(model_content=int8.quantize()).get_input_details()
    assert pixels["dtype"] == np.uint8 and pixels["quantization"] == (1.0, 0)
    calibrated = int8._debugger.calibrated_model

    # The calibrated model is still a float model (each tensor's recorded range beside it): run it on
    # the same images and compare every tensor's range with its record, tensor by tensor.
    observed: dict[int, tuple[float, float]] = {}
    interpreter = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    for image in calibration:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None].astype(np.float32))
        interpreter.invoke()
        for detail in interpreter.get_tensor_details():
            try:
                values = interpreter.get_tensor(detail["index"])
            except ValueError:
                continue
            if values.dtype == np.float32 and values.size:
                low, high = observed.get(detail["index"], (np.inf, -np.inf))
                observed[detail["index"]] = (min(low, float(values.min())), max(high, float(values.max())))

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(calibrated, 0))
    graph = tree.subgraphs[0]
    (pixels,) = graph.inputs
    assert (graph.tensors[pixels].quantization.min[0], graph.tensors[pixels].quantization.max[0]) == (0.0, 255.0)
    # Compared: every convolution's output. (The calibrator's record of a tensor that a later elementwise
    # op overwrites in place, e.g. an ADD, is that op's range, so tensors feeding one are left out.)
    code = lambda op: builtin_code(tree.operatorCodes[op.opcodeIndex])  # noqa: E731
    convolutions = (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D)
    elementwise = (schema.BuiltinOperator.ADD, schema.BuiltinOperator.SUB, schema.BuiltinOperator.MUL,
                   schema.BuiltinOperator.DIV, schema.BuiltinOperator.CONCATENATION)
    feeds_elementwise = {i for op in graph.operators if code(op) in elementwise for i in op.inputs}
    compared = 0
    for op in graph.operators:
        (index,) = op.outputs
        if code(op) not in convolutions or index in feeds_elementwise:
            continue
        recorded, (low, high) = graph.tensors[index].quantization, observed[index]
        assert recorded.min[0] == pytest.approx(low, rel=1e-3, abs=1e-6), graph.tensors[index].name
        assert recorded.max[0] == pytest.approx(high, rel=1e-3, abs=1e-6), graph.tensors[index].name
        compared += 1
    assert compared > 20  # the backbone's activations, not just a few tensors

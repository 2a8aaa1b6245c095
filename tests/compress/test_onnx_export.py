"""The int8 ONNX is a QDQ graph TensorRT's explicit quantization accepts (structure checked here, not by
TensorRT: there is no NVIDIA GPU on our machines), and `check_tensorrt_qdq` catches a graph that is not."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from medtk.compress.onnx_export import check_tensorrt_qdq, head_nodes
from medtk.runtime import onnx_file


@pytest.fixture(scope="module")
def qdq(onnx_models) -> onnx.ModelProto:
    return onnx.load_from_string(onnx_models["onnx_int8"].read_bytes())


def test_the_exported_files_pass_the_onnx_checker(onnx_models):
    for path in onnx_models.values():
        onnx.checker.check_model(onnx.load_from_string(path.read_bytes()))
        proto = onnx.load_from_string(path.read_bytes())
        assert [i.name for i in proto.graph.input] == ["pixels"]
        assert sorted(o.name for o in proto.graph.output) == ["cam", "probs"]
        assert [p.key for p in proto.metadata_props].count(onnx_file.metadata_key("medtk")) == 1


def test_the_int8_graph_obeys_tensorrt_explicit_quantization_rules(qdq):
    constants = {t.name: numpy_helper.to_array(t) for t in qdq.graph.initializer}
    nodes = qdq.graph.node
    quantize = [n for n in nodes if n.op_type == "QuantizeLinear"]
    assert len(quantize) > 10
    for node in quantize:  # activations: symmetric int8, zero point 0
        zero = constants[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any(), node.name
    producers = {output: n for n in nodes for output in n.output}
    head = set(head_nodes(qdq))
    convs = [n for n in nodes if n.op_type == "Conv" and n.name not in head]
    assert convs
    for conv in convs:  # every backbone Conv weight: int8 in [-127, 127], per output channel (axis 0), zero point 0
        dequantize = producers[conv.input[1]]
        assert dequantize.op_type == "DequantizeLinear"
        weights, scale = constants[dequantize.input[0]], constants[dequantize.input[1]]
        assert weights.dtype == np.int8 and weights.min() >= -127 and weights.max() <= 127
        assert scale.shape == (weights.shape[0],)
        assert next(a.i for a in dequantize.attribute if a.name == "axis") == 0
        assert not constants[dequantize.input[2]].any()
        assert producers[conv.input[0]].op_type == "DequantizeLinear"  # its input is int8 too
    assert check_tensorrt_qdq(qdq.SerializeToString()) == []


def test_the_int8_head_stays_float(qdq, onnx_models):
    """The `cam` conv, the pooling and the softmax take float inputs and float weights, as in the TFLite
    int8: with them quantized the class map had one int8 range for every image."""
    nodes = qdq.graph.node
    producers = {output: n for n in nodes for output in n.output}
    head = [n for n in nodes if n.name in set(head_nodes(qdq))]
    assert {n.op_type for n in head} >= {"Conv", "Softmax"}
    (cam_conv,) = [n for n in head if n.op_type == "Conv"]
    assert producers[cam_conv.input[0]].op_type == "DequantizeLinear"  # the backbone's int8 features come in
    assert cam_conv.input[1] in {t.name for t in qdq.graph.initializer}  # its weights are float constants
    for node in head:
        assert not [n for n in nodes if n.op_type == "QuantizeLinear" and set(node.output) & set(n.input)], node.name
    names = [o.name for o in qdq.graph.output]
    assert all(producers[name].op_type != "DequantizeLinear" for name in names)


def test_the_int8_probabilities_keep_float_resolution(onnx_models):
    """As many distinct probabilities as the float32 model gives on the same images (the quantized
    head gave about two thirds as many on this model)."""
    import onnxruntime as ort
    from tests.runtime.runtime_models import synthetic_images

    images = np.stack(list(synthetic_images(np.random.default_rng(3), 200))).astype(np.float32)

    def distinct(name: str) -> int:
        session = ort.InferenceSession(onnx_models[name].read_bytes(), providers=["CPUExecutionProvider"])
        return len(np.unique([session.run(["probs"], {"pixels": image[None]})[0][0, 1].round(6) for image in images]))

    assert distinct("onnx_int8") >= 0.95 * distinct("onnx_float32")


def test_a_graph_with_a_nonzero_zero_point_or_minus_128_is_reported(qdq):
    broken = onnx.ModelProto()
    broken.CopyFrom(qdq)
    zero_name = next(n for n in broken.graph.node if n.op_type == "QuantizeLinear").input[2]
    weight_name = next(n for n in broken.graph.node if n.op_type == "DequantizeLinear"
                       and any(t.name == n.input[0] and t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4
                               for t in broken.graph.initializer)).input[0]
    for tensor in broken.graph.initializer:
        if tensor.name == zero_name:
            tensor.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zero_name))
        if tensor.name == weight_name:
            values = numpy_helper.to_array(tensor).copy()
            values.flat[0] = -128
            tensor.CopyFrom(numpy_helper.from_array(values, weight_name))
    problems = check_tensorrt_qdq(broken.SerializeToString())
    assert any("zero point [3]" in p for p in problems)
    assert any("-128" in p for p in problems)


def test_raw_pixels_reach_the_first_conv_unquantized(qdq):
    """The preprocessing (gray to RGB, channel reversal, mean subtraction) stays float: a symmetric int8
    range over 0..255 pixels had steps of 1.5-2 and clipped above the brightest calibration pixel. The
    first Conv's input is quantized, after normalization."""
    from medtk.compress.onnx_export import pixel_nodes

    nodes = qdq.graph.node
    producers = {output: n for n in nodes for output in n.output}
    assert not [n for n in nodes if n.op_type == "QuantizeLinear" and "pixels" in n.input]
    preprocessing = [n for n in nodes if n.name in set(pixel_nodes(qdq))]  # in this graph: up to the first Conv
    first_conv = next(n for n in nodes if n.op_type == "Conv")
    (quantize,) = [n for n in preprocessing if n.op_type == "QuantizeLinear"]  # one: the first Conv's input
    dequantize = producers[first_conv.input[0]]
    assert dequantize.op_type == "DequantizeLinear" and dequantize.input[0] == quantize.output[0]
    assert producers[quantize.input[0]].op_type != "Concat"  # the normalized image, not the raw pixels


def _relu_cam_graph(size: int) -> bytes:
    """pixels [1, 1, S, S] (NCHW) -> 1x1 Conv (weight 1) -> Relu -> `cam` 1x1 Conv (2 classes) -> mean -> Softmax."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Conv", ["pixels", "w"], ["features_raw"], name="conv"),
        helper.make_node("Relu", ["features_raw"], ["features"], name="relu"),
        helper.make_node("Conv", ["features", "w_cam"], ["cam_nchw"], name="cam_conv"),
        helper.make_node("Transpose", ["cam_nchw"], ["cam"], perm=[0, 2, 3, 1], name="cam_nhwc"),
        helper.make_node("ReduceMean", ["cam_nchw"], ["logits4"], axes=[2, 3], keepdims=0, name="pool"),
        helper.make_node("Softmax", ["logits4"], ["probs"], axis=1, name="softmax"),
    ]
    weights = [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w"),
               numpy_helper.from_array(np.array([1.0, -1.0], np.float32).reshape(2, 1, 1, 1), "w_cam")]
    graph = helper.make_graph(
        nodes, "relu_cam", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("cam", TensorProto.FLOAT, [1, size, size, 2])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_one_outlying_activation_does_not_set_an_int8_range():
    """Ranges are the 99.999th percentile of |x|, collected 16 images at a time: 32 images of pixels 0..10
    and one pixel of 250 in one of them. From the maximum, the step of the Relu's range would be 250/127 and
    every real activation would get five levels; from the percentile it is ~10/127."""
    from medtk.compress.onnx_export import _chunk, quantize_qdq

    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 10, (1, 64, 64)).astype(np.float32) for _ in range(32)]  # the graph is NCHW
    images[7][0, 5, 5] = 250.0
    quantized = onnx.load_from_string(quantize_qdq(_relu_cam_graph(64), images))
    constants = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    (relu_range,) = [n for n in quantized.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "features"]
    step = float(constants[relu_range.input[1]])
    assert 9.5 / 127 < step < 10.5 / 127, step * 127
    assert [_chunk(n) for n in (300, 64, 32, 13, 17, 1)] == [15, 16, 16, 13, 1, 1]


def test_one_calibration_gives_the_plain_qdq_model_and_models_with_the_networks_tail_float(onnx_models):
    """Accuracy control's ONNX half (`QdqCalibration`): ranges computed once and reused from ONNX
    Runtime's cache; the full model is `quantize_qdq`'s, and a model with the last quantized nodes kept
    float has no QuantizeLinear/DequantizeLinear feeding them, and still obeys TensorRT's rules."""
    from medtk.compress.onnx_export import QdqCalibration
    from tests.runtime.runtime_models import CALIBRATION_IMAGES, synthetic_images

    proto = onnx.load_from_string(onnx_models["onnx_float32"].read_bytes())
    del proto.metadata_props[:]  # the graph as tf2onnx converted it
    float_model = proto.SerializeToString()
    calibration = list(synthetic_images(np.random.default_rng(7), CALIBRATION_IMAGES))
    with QdqCalibration(float_model, calibration) as calibrated:
        full = calibrated.quantize()
        order = calibrated.execution_order()
        assert calibrated.layer_errors() == []  # no per-op ranking from ONNX Runtime: the tail decides
        tail = tuple(name for name, _ in reversed(order))[:2]
        mixed = onnx.load_from_string(calibrated.quantize(tail))
    plain = onnx.load_from_string(onnx_models["onnx_int8"].read_bytes())  # quantize_qdq's, same images
    assert onnx.load_from_string(full).graph == plain.graph
    assert "Conv" in {op for _, op in order}
    assert not set(name for name, _ in order) & set(head_nodes(onnx.load_from_string(full)))  # the head is float anyway
    producers = {output: n for n in mixed.graph.node for output in n.output}
    constants = {t.name for t in mixed.graph.initializer}
    quantized_inputs = {name for n in mixed.graph.node if n.op_type == "QuantizeLinear" for name in n.input}
    kept = [n for n in mixed.graph.node if n.name in tail or any(n.input[0] in k.output for k in mixed.graph.node
                                                                  if k.name in tail and n.op_type in ("Relu", "Clip"))]
    assert {n.name for n in kept} >= set(tail) and "Conv" in {n.op_type for n in kept}
    assert not {op for _, op in order} & {"Relu", "Clip"}  # fused into the op before, as LiteRT does
    for node in kept:  # float weights, float outputs (its inputs may be the int8 layer before, dequantized)
        assert not any(name in producers and producers[name].op_type == "DequantizeLinear"
                       and producers[name].input[0] in constants for name in node.input), node.name
        assert not set(node.output) & quantized_inputs, node.name
    assert check_tensorrt_qdq(mixed.SerializeToString()) == []

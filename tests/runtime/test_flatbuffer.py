"""Reading and rewriting `.tflite` flatbuffers without TensorFlow, on real tiny models."""

from types import SimpleNamespace

import pytest
from ai_edge_litert import schema_py_generated as schema

from medtk.errors import ModelError
from medtk.runtime.flatbuffer import (
    builtin_code,
    check_identifier,
    count_macs,
    embed_named_buffer,
    operator_codes,
    read_named_buffer,
    uint8_input,
    weights_sha256,
)


def test_macs_are_counted_from_the_graph_and_do_not_depend_on_precision(bench_models):
    # MobileNetV2 is ~300 M MACs at 224x224; at 32x32 the convolutions scale with the pixel count.
    macs = count_macs(bench_models["float32"])
    assert macs == count_macs(bench_models["int8"])
    assert 300e6 * (32 / 224) ** 2 * 0.7 < macs < 300e6 * (32 / 224) ** 2 * 1.5


def test_one_opcode_rule_for_both_schema_apis():
    ops = schema.BuiltinOperator
    new = SimpleNamespace(builtinCode=ops.GELU, deprecatedBuiltinCode=127)  # codes above 127 (schema v3a)
    old = SimpleNamespace(builtinCode=0, deprecatedBuiltinCode=ops.CONV_2D)  # files before v3a
    assert (builtin_code(new), builtin_code(old)) == (ops.GELU, ops.CONV_2D)
    reader = SimpleNamespace(BuiltinCode=lambda: ops.GELU, DeprecatedBuiltinCode=lambda: 127)
    assert builtin_code(reader) == ops.GELU


def test_operator_codes_are_in_execution_order(bench_models):
    codes = operator_codes(bench_models["int8"])
    ops = schema.BuiltinOperator
    assert codes[0] == ops.QUANTIZE and ops.CONV_2D in codes and ops.SOFTMAX in codes


def test_named_buffers_embed_replace_and_leave_the_checksum_alone(bench_models):
    model = bench_models["float32"].read_bytes()
    assert read_named_buffer(model, "other") is None
    once = embed_named_buffer(model, "other", b"first")
    twice = embed_named_buffer(once, "other", b"second")
    assert read_named_buffer(once, "other") == b"first" and read_named_buffer(twice, "other") == b"second"
    root = schema.Model.GetRootAsModel(twice, 0)
    names = [root.Metadata(i).Name() for i in range(root.MetadataLength())]
    assert names.count(b"other") == 1
    assert weights_sha256(model) == weights_sha256(once) == weights_sha256(twice)
    assert read_named_buffer(bench_models["float32"], "medtk") == read_named_buffer(model, "medtk") is not None


def test_not_a_flatbuffer_is_refused(tmp_path, bench_models):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match=r"junk.tflite: not a TFLite model \(no 'TFL3'"):
        read_named_buffer(junk, "medtk")
    with pytest.raises(ModelError, match="m: not a TFLite model"):
        check_identifier(b"TFL3", "m")
    with pytest.raises(ValueError, match="input does not feed a QUANTIZE op"):
        uint8_input(bench_models["int8"].read_bytes())  # already uint8

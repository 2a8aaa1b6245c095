"""Outputs found by signature name on real converted models, and the shape contract."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.errors import ModelError
from medtk.runtime.backend import load_backend, make_interpreter
from medtk.runtime.signature import resolve_io


def _interpreter(path):
    return make_interpreter(load_backend(), path.read_bytes(), str(path), 1, "cpu")[0]


def test_float_and_int8_io(float_model, int8_model, rgb_model):
    for path, dtype in ((float_model, np.float32), (int8_model, np.uint8)):
        io = resolve_io(_interpreter(path), str(path))
        assert (io.input_size, io.channels, io.num_classes) == (64, 1, 2)
        assert io.pixels.dtype == dtype and io.probs.shape == (1, 2) and io.cam.shape == (1, 2, 2, 2)
        assert io.probs.dtype == np.float32 and io.cam.dtype == np.float32
    int8_io = resolve_io(_interpreter(int8_model), "int8")
    assert (int8_io.pixels.scale, int8_io.pixels.zero_point) == (1.0, 0)  # raw pixels map 1:1
    rgb_io = resolve_io(_interpreter(rgb_model), "rgb")
    assert (rgb_io.channels, rgb_io.num_classes, rgb_io.cam.shape) == (3, 3, (1, 2, 2, 3))


def test_outputs_come_from_the_signature_not_the_output_order(float_model):
    pixels = np.full((1, 64, 64, 1), 90.0, np.float32)
    outputs = _interpreter(float_model).get_signature_runner("serving_default")(pixels=pixels)
    interpreter = _interpreter(float_model)
    io = resolve_io(interpreter, "m")
    interpreter.set_tensor(io.pixels.index, pixels)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(io.probs.index), outputs["probs"], atol=1e-6)
    np.testing.assert_allclose(interpreter.get_tensor(io.cam.index), outputs["cam"], atol=1e-6)


class _FakeSignatureless:
    """Only the interpreter's detail listing, for contract checks that need an odd model."""

    def __init__(self, inputs, outputs):
        self._inputs, self._outputs = inputs, outputs

    def get_input_details(self):
        return self._inputs

    def get_output_details(self):
        return self._outputs

    def get_signature_list(self):
        return {}


def _detail(index, shape, dtype=np.float32):
    return {"index": index, "shape": np.array(shape), "dtype": dtype, "quantization": (0.0, 0)}


def test_without_signature_outputs_are_found_by_rank():
    fake = _FakeSignatureless([_detail(0, [1, 8, 8, 1])], [_detail(5, [1, 1, 1, 3]), _detail(7, [1, 3])])
    io = resolve_io(fake, "m")
    assert (io.probs.index, io.cam.index) == (7, 5)


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([_detail(0, [1, 8, 6, 1])], [_detail(1, [1, 2]), _detail(2, [1, 1, 1, 2])], "not \\[1, S, S, C\\]"),
        ([_detail(0, [1, 8, 8, 1])], [_detail(1, [1, 2]), _detail(2, [1, 1, 1, 3])], "are not \\[1, K\\]"),
        ([_detail(0, [1, 8, 8, 1])], [_detail(1, [1, 2])], "are not \\[1, K\\] probs"),
        ([_detail(0, [1, 8, 8, 1]), _detail(3, [1, 2])], [_detail(1, [1, 2])], "expected one input"),
    ],
)
def test_contract_violations(inputs, outputs, message):
    with pytest.raises(ModelError, match=message):
        resolve_io(_FakeSignatureless(inputs, outputs), "m")

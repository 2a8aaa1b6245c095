"""The `CellGeometry` of a Keras layer's feature map: where each cell's receptive field is centred.

Walks the functional graph from the layer back to the input and composes, per axis, each layer's map
from an output index u to its input coordinate: `stride * u - pad_before + dilation * (kernel - 1) / 2`
for convolutions and pools (TensorFlow's "same" puts the smaller half of the padding first), a shift for
zero padding and cropping, the identity for layers that keep the spatial size (activations, batch norm,
dropout, additions). Every input of a merging layer (a residual addition) must agree, or the geometry
is unknown (None) and maps are drawn as an even grid, as before. Keras' ResNet50 centres cell i on
input pixel stride * i (stride 16 or 32), MobileNetV2 on stride * i + stride - 1: an even grid
(stride * i + (stride - 1) / 2) is half a cell off either way (tests/train/test_cam_geometry.py).
"""

from __future__ import annotations

from typing import Any

from medtk.runtime.geometry import CellGeometry

Axis = tuple[float, float]  # input coordinate = scale * index + offset
Transform = tuple[Axis, Axis]  # rows, columns

WINDOWED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D")


def cell_geometry(model: Any, layer: str) -> CellGeometry | None:
    """Where the cells of `layer`'s output sit on `model`'s input, or None when the graph says nothing sure."""
    input_size = int(model.input_shape[1])
    transform = _to_input(model.get_layer(layer).output, {})
    if transform is None:
        return None
    (row_scale, row_offset), (column_scale, column_offset) = transform
    return CellGeometry(input_size=input_size, stride=(row_scale, column_scale), origin=(row_offset, column_offset))


def _to_input(tensor: Any, seen: dict[int, Transform | None]) -> Transform | None:
    key = id(tensor)
    if key not in seen:
        seen[key] = _compute(tensor, seen)
    return seen[key]


def _compute(tensor: Any, seen: dict[int, Transform | None]) -> Transform | None:
    layer, node_index, _ = tensor._keras_history
    if type(layer).__name__ == "InputLayer":
        return (1.0, 0.0), (1.0, 0.0)
    node = layer._inbound_nodes[node_index]
    inputs = node.input_tensors if isinstance(node.input_tensors, (list, tuple)) else [node.input_tensors]
    upstream = [_to_input(t, seen) for t in inputs]
    if not upstream or any(u is None for u in upstream) or any(u != upstream[0] for u in upstream[1:]):
        return None
    local = _local(layer, inputs[0].shape, tensor.shape)
    if local is None:
        return None
    return tuple((scale * step, scale * shift + offset)  # type: ignore[return-value]
                 for (scale, offset), (step, shift) in zip(upstream[0], local))


def _local(layer: Any, input_shape: Any, output_shape: Any) -> Transform | None:
    """This layer's own (step, shift) per axis: output index u -> its input coordinate step * u + shift."""
    kind = type(layer).__name__
    if kind == "ZeroPadding2D":
        (top, _), (left, _) = layer.padding
        return (1.0, -float(top)), (1.0, -float(left))
    if kind == "Cropping2D":
        (top, _), (left, _) = layer.cropping
        return (1.0, float(top)), (1.0, float(left))
    if kind in WINDOWED:
        window = getattr(layer, "kernel_size", None) or layer.pool_size
        dilation = getattr(layer, "dilation_rate", (1, 1))
        axes = []
        for axis in (0, 1):
            stride, span = layer.strides[axis], dilation[axis] * (window[axis] - 1) + 1
            before = 0
            if layer.padding == "same":
                size_in, size_out = int(input_shape[1 + axis]), int(output_shape[1 + axis])
                before = max((size_out - 1) * stride + span - size_in, 0) // 2
            axes.append((float(stride), (span - 1) / 2.0 - before))
        return tuple(axes)  # type: ignore[return-value]
    if len(input_shape) == 4 and len(output_shape) == 4 and tuple(input_shape[1:3]) == tuple(output_shape[1:3]):
        return (1.0, 0.0), (1.0, 0.0)  # activations, batch norm, dropout, additions: same grid
    return None


def cam_geometry(model: Any) -> CellGeometry | None:
    """The geometry of a medtk classifier's `cam` output: what its export records."""
    return cell_geometry(model, "cam")

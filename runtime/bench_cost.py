"""Multiply-accumulates of one inference, read from the TFLite flatbuffer (no interpreter, no TF).

Device estimates scale a published latency by the ratio of work between the benchmarked model and the
published one; MACs of the convolution and fully connected layers are that work, to first order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtk.runtime.metadata import check_tflite_bytes


def count_macs(model: bytes | str | Path) -> int:
    """Sum of MACs over CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV (batch 1)."""
    from ai_edge_litert import schema_py_generated as schema

    if not isinstance(model, (bytes, bytearray)):
        model = Path(model).read_bytes()
    check_tflite_bytes(model, "model")
    ops = schema.BuiltinOperator
    root = schema.Model.GetRootAsModel(model, 0)
    codes = [_builtin_code(root.OperatorCodes(i)) for i in range(root.OperatorCodesLength())]
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


def _builtin_code(opcode) -> int:
    # Schema v3a stores codes above 127 in BuiltinCode and keeps DeprecatedBuiltinCode for old files.
    return max(int(opcode.BuiltinCode()), int(opcode.DeprecatedBuiltinCode()))

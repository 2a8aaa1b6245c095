"""Find the model's input and its `probs` / `cam` outputs once, as tensor indices.

The converter may reorder outputs, so they are addressed by signature name (docs/ARCHITECTURE.md).
The indices are resolved once at load time: per call the classifier uses plain `set_tensor` /
`invoke` / `get_tensor`, which costs less than a signature runner call. A model without a signature
(exported by other tools) is read by output rank instead: `[1, K]` is `probs`, `[1, h, w, K]` is `cam`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtk.errors import ModelError

SIGNATURE_KEY = "serving_default"
OUTPUT_NAMES = ("probs", "cam")


@dataclass(frozen=True)
class Tensor:
    """One tensor: where it lives and how to (de)quantize it."""

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)


@dataclass(frozen=True)
class ModelIO:
    pixels: Tensor
    probs: Tensor
    cam: Tensor

    @property
    def input_size(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[3]

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]


def resolve_io(interpreter, name: str) -> ModelIO:
    """The model's input and outputs, checked against the deployable-model contract."""
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise ModelError(f"{name}: expected one input tensor (raw pixels), found {len(inputs)}")
    outputs = _outputs_by_name(interpreter, name)
    io = ModelIO(pixels=_tensor(inputs[0]), probs=_tensor(outputs["probs"]), cam=_tensor(outputs["cam"]))
    _check_shapes(io, name)
    return io


def _outputs_by_name(interpreter, name: str) -> dict[str, dict]:
    details = {detail["index"]: detail for detail in interpreter.get_output_details()}
    signatures = interpreter.get_signature_list()
    if signatures:
        key = SIGNATURE_KEY if SIGNATURE_KEY in signatures else next(iter(signatures))
        runner_outputs = interpreter.get_signature_runner(key).get_output_details()
        missing = [output for output in OUTPUT_NAMES if output not in runner_outputs]
        if missing:
            found = ", ".join(sorted(runner_outputs)) or "none"
            raise ModelError(f"{name}: signature {key!r} has no output {missing[0]!r} (outputs: {found})")
        indices = {output: runner_outputs[output]["index"] for output in OUTPUT_NAMES}
        if not all(index in details for index in indices.values()):
            raise ModelError(f"{name}: signature {key!r} is not the model's main graph; re-export with medtk")
        return {output: details[index] for output, index in indices.items()}
    by_rank = {len(detail["shape"]): detail for detail in details.values()}
    if len(details) != 2 or set(by_rank) != {2, 4}:
        shapes = [list(detail["shape"]) for detail in details.values()]
        raise ModelError(f"{name}: outputs {shapes} are not [1, K] probs and [1, h, w, K] cam")
    return {"probs": by_rank[2], "cam": by_rank[4]}


def _tensor(detail: dict) -> Tensor:
    scale, zero_point = detail["quantization"]
    return Tensor(
        index=int(detail["index"]),
        shape=tuple(int(n) for n in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def _check_shapes(io: ModelIO, name: str) -> None:
    pixels, probs, cam = io.pixels.shape, io.probs.shape, io.cam.shape
    if len(pixels) != 4 or pixels[0] != 1 or pixels[1] != pixels[2] or pixels[3] not in (1, 3):
        raise ModelError(f"{name}: input shape {list(pixels)} is not [1, S, S, C] with C 1 or 3")
    if len(probs) != 2 or probs[0] != 1 or len(cam) != 4 or cam[0] != 1 or cam[3] != probs[1]:
        raise ModelError(f"{name}: outputs probs {list(probs)} and cam {list(cam)} are not [1, K] and [1, h, w, K]")

"""ONNX Runtime behind the interpreter interface `Classifier` uses, for `.onnx` medtk models.

ONNX Runtime is the `medtk[onnx]` extra and is imported only here, only when an `.onnx` model is
loaded: the base install stays LiteRT only (tests/runtime/test_layers.py). The execution provider is
the first the installed ONNX Runtime offers of TensorRT, CUDA and CPU (`delegate="auto"`; "gpu" asks
for TensorRT or CUDA and falls back to the CPU with a warning, "cpu" asks for the CPU), and
`Placement.provider` records the one the session actually runs, so a benchmark never reports a CPU
figure as a GPU one. Only the CPU provider was run for medtk (no NVIDIA GPU on our machines).

TensorRT builds an explicitly quantized (QDQ) graph only with its INT8 flag set, even though the Q/DQ
nodes already say where int8 runs; without it the engine build fails ("Int8 precision has been set for
a layer or layer output, but int8 is not configured in the builder", onnxruntime issue 13381; TensorRT
issue 4021). So an int8 `.onnx` asks the TensorRT provider for `trt_int8_enable` (no calibration table:
the scales are in the graph). FP16 stays off: the layers the export kept float run in float32, as they
were measured.

`OnnxInterpreter` offers the few calls of a LiteRT interpreter that `Classifier` and `signature.py`
make (tensor details, a signature with the outputs by name, set/invoke/get), so the classifier's
decision, CAM and thread bound are the same code for both formats.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from typing import Any

import numpy as np

from medtk.errors import ConfigError, MissingExtraError, ModelError
from medtk.runtime.backend import Backend, Placement, resolve_threads
from medtk.runtime.messages import first_line
from medtk.runtime.signature import SIGNATURE_KEY

DISTRIBUTION = "onnxruntime"
PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = PROVIDERS[:2]
CPU_PROVIDER = "CPUExecutionProvider"
_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
           "tensor(float16)": np.float16}


def load_onnx_backend() -> Backend:
    """ONNX Runtime and its version; a one-line error naming the extra when it is not installed."""
    try:
        module = importlib.import_module("onnxruntime")
    except ImportError:
        raise MissingExtraError('running an .onnx model needs ONNX Runtime: pip install "medtk[onnx]"') from None
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(module, "__version__", "unknown")
    return Backend(name=DISTRIBUTION, version=version, module=module)


def choose_providers(available: list[str] | tuple[str, ...], delegate: str, name: str) -> tuple[list[str], str | None]:
    """The providers to ask for, best first, and why it is not what was asked (None when it is)."""
    offered = [provider for provider in PROVIDERS if provider in available]
    if delegate == "cpu":
        return [CPU_PROVIDER], None
    if delegate == "auto":
        return offered or [CPU_PROVIDER], None
    if delegate == "gpu":
        gpus = [provider for provider in offered if provider in GPU_PROVIDERS]
        if gpus:
            return gpus + [CPU_PROVIDER], None
        reason = f"gpu unavailable (this ONNX Runtime offers {', '.join(available) or 'no providers'})"
        warnings.warn(f"{name}: {reason}; running on the CPU instead", RuntimeWarning, stacklevel=4)
        return [CPU_PROVIDER], reason
    raise ConfigError(f"delegate={delegate!r} is not valid for an .onnx model; expected one of auto, cpu, gpu")


def with_options(providers: list[str], model: bytes) -> list[str | tuple[str, dict[str, str]]]:
    """`providers` as ONNX Runtime takes them, TensorRT with its INT8 flag when `model` is a QDQ graph (its
    op types are plain strings in the protobuf, so no ONNX parser is needed to tell)."""
    quantized = b"QuantizeLinear" in model
    return [(provider, {"trt_int8_enable": "True"}) if provider == "TensorrtExecutionProvider" and quantized
            else provider for provider in providers]


def make_session(backend: Backend, model: bytes, name: str, num_threads: int | None, delegate: str):
    """An `OnnxInterpreter` on the best provider for `delegate`, and its Placement."""
    ort = backend.module
    threads = resolve_threads(num_threads)
    providers, fallback = choose_providers(ort.get_available_providers(), delegate, name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model, sess_options=options, providers=with_options(providers, model))
    except Exception as error:  # ORT raises its own Fail/InvalidGraph/... classes, all from RuntimeError or Exception
        raise ModelError(f"{name}: not a usable ONNX model ({first_line(error)})") from None
    used = session.get_providers()[0]
    kind = "cpu" if used == CPU_PROVIDER else "gpu"
    return OnnxInterpreter(session, name), Placement(delegate=kind, num_threads=threads, fallback=fallback,
                                                     provider=used)


class OnnxInterpreter:
    """The LiteRT interpreter calls `Classifier` makes, on an ONNX Runtime session (not thread-safe by
    itself: the classifier's lock serialises set/invoke/get as it does for LiteRT)."""

    def __init__(self, session: Any, name: str):
        self._session = session
        self._inputs = session.get_inputs()
        self._outputs = session.get_outputs()
        if len(self._inputs) != 1:
            raise ModelError(f"{name}: expected one input tensor (raw pixels), found {len(self._inputs)}")
        self._feed: dict[str, np.ndarray] = {}
        self._results: list[np.ndarray] = []
        self._output_names = [output.name for output in self._outputs]
        self._input_details = [_details(self._inputs[0], 0, name)]
        self._output_details = [_details(output, index + 1, name) for index, output in enumerate(self._outputs)]

    def get_input_details(self) -> list[dict]:
        return self._input_details

    def get_output_details(self) -> list[dict]:
        return self._output_details

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        return {SIGNATURE_KEY: {"inputs": [self._inputs[0].name], "outputs": self._output_names}}

    def get_signature_runner(self, key: str = SIGNATURE_KEY) -> "_Outputs":
        return _Outputs({detail["name"]: detail for detail in self._output_details})

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self._feed = {self._inputs[index].name: value}

    def invoke(self) -> None:
        self._results = self._session.run(self._output_names, self._feed)

    def get_tensor(self, index: int) -> np.ndarray:
        return self._results[index - 1]


class _Outputs:
    def __init__(self, by_name: dict[str, dict]):
        self._by_name = by_name

    def get_output_details(self) -> dict[str, dict]:
        return self._by_name


def _details(node: Any, index: int, name: str) -> dict:
    if node.type not in _DTYPES:
        raise ModelError(f"{name}: tensor {node.name!r} has type {node.type}; medtk models use float32 or uint8")
    shape = tuple(node.shape)
    if not all(isinstance(n, int) for n in shape):
        raise ModelError(f"{name}: tensor {node.name!r} has shape {list(shape)}; medtk exports fixed shapes")
    return {"name": node.name, "index": index, "shape": np.array(shape, np.int32), "dtype": _DTYPES[node.type],
            "quantization": (0.0, 0)}

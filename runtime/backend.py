"""Which TFLite interpreter runs the model, and on which delegate; never TensorFlow.

The backend is LiteRT (`ai_edge_litert`), imported only here and only when a model is loaded, so
`import medtk.runtime` stays light (docs/ARCHITECTURE.md). It is the only one: `tflite_runtime` is
not a fallback. Its last release is from 2023, it needs numpy<2 (which conflicts with our base
dependencies), its int8 kernels are much slower (benchmarks/RESULTS.md, "Notes moved from code"), and
LiteRT ships wheels for the aarch64 devices we profile (Jetson, Raspberry Pi). A backend we cannot test end to end is not one we
advertise. `tf.lite` is never used (deprecated, and the runtime must not import TensorFlow).

Delegates: on CPU LiteRT applies XNNPACK itself (threads from `num_threads`); a GPU delegate is the
`libtensorflowlite_gpu_delegate.so` shared library. A GPU that cannot be used falls back to the CPU
with a warning, and the fallback is recorded so benchmarks never report CPU numbers as GPU ones.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtk.errors import ConfigError, MissingExtraError, ModelError
from medtk.runtime.messages import first_line
from medtk.runtime.versions import LITERT_DISTRIBUTION, distribution_version

log = logging.getLogger(__name__)

INTERPRETER_MODULE = "ai_edge_litert.interpreter"
DISTRIBUTION = LITERT_DISTRIBUTION  # for the version in reports and the install hint
GPU_DELEGATE_LIBRARY = "libtensorflowlite_gpu_delegate.so"
DELEGATES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Backend:
    """An importable interpreter module: its name and version, for reports."""

    name: str
    version: str
    module: Any

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class Placement:
    """Where the model runs: `delegate` is what actually runs it; `fallback` says why not what was asked."""

    delegate: str  # "cpu" (XNNPACK), "gpu", or the path of an external delegate library
    num_threads: int
    fallback: str | None = None
    provider: str | None = None  # `.onnx` models: the ONNX Runtime execution provider that runs it (onnx_engine.py)


def load_backend() -> Backend:
    """LiteRT's interpreter module and its version; a one-line error naming the install when missing."""
    try:
        module = importlib.import_module(INTERPRETER_MODULE)
    except ImportError:
        raise MissingExtraError(f"no TFLite interpreter is installed: pip install {DISTRIBUTION}") from None
    return Backend(name=DISTRIBUTION, version=distribution_version(DISTRIBUTION), module=module)


def default_threads() -> int:
    """The CPUs this process may use (cgroup/affinity aware where the OS says so)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_threads(num_threads: int | None, option: str = "num_threads") -> int:
    """The interpreter threads to use: all usable CPUs by default, else 1..that many.

    The one bound for `Classifier`, `medtk predict`, `medtk bench` and its worker: more threads than
    CPUs only adds contention, and absurd counts exhaust the machine or crash the interpreter.
    """
    available = default_threads()
    if num_threads is None:
        return available
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int,)) and not hasattr(num_threads, "__index__"):
        raise ConfigError(f"{option}={num_threads!r} must be a whole number of threads")
    threads = int(num_threads)
    if threads < 1:
        raise ConfigError(f"{option}={num_threads!r} must be at least 1")
    if threads > available:
        raise ConfigError(
            f"{option}={threads} is more than the {available} CPUs this process may use; give 1..{available}"
        )
    return threads


def make_interpreter(backend: Backend, model: bytes, name: str, num_threads: int | None, delegate: str):
    """Build an interpreter with tensors allocated; returns (interpreter, Placement)."""
    threads = resolve_threads(num_threads)
    library = _delegate_library(delegate)
    if library is not None:
        try:
            ctypes.CDLL(library)  # probe first: a failed load_delegate prints a traceback from __del__
            external = backend.module.load_delegate(library)
            interpreter = _build(backend, model, name, threads, [external])
            return interpreter, Placement(delegate=delegate, num_threads=threads)
        except (ValueError, RuntimeError, OSError) as error:
            reason = f"{delegate} delegate unavailable ({first_line(error)})"
            if delegate == "auto":
                log.debug("%s: %s; running on the CPU", name, reason)
            else:
                warnings.warn(f"{name}: {reason}; running on the CPU (XNNPACK) instead", RuntimeWarning, stacklevel=3)
            return _build(backend, model, name, threads, None), Placement("cpu", threads, fallback=reason)
    return _build(backend, model, name, threads, None), Placement("cpu", threads)


def _delegate_library(delegate: str) -> str | None:
    """None for the CPU; the shared library to load for anything else."""
    if delegate == "cpu":
        return None
    if delegate in ("auto", "gpu"):
        return GPU_DELEGATE_LIBRARY
    if Path(delegate).suffix in (".so", ".dylib", ".dll") and Path(delegate).is_file():
        return delegate
    raise ConfigError(
        f"delegate={delegate!r} is not valid; expected one of {', '.join(DELEGATES)} or a delegate .so file"
    )


def _build(backend: Backend, model: bytes, name: str, threads: int, delegates: list | None):
    try:
        interpreter = backend.module.Interpreter(
            model_content=model, num_threads=threads, experimental_delegates=delegates
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        if delegates:  # a delegate that loads but rejects the graph: the caller falls back to the CPU
            raise
        raise ModelError(f"{name}: not a usable TFLite model ({first_line(error)})") from None
    return interpreter

"""Backend and delegate choice on the real interpreter."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

from medtk.errors import ConfigError, ModelError
from medtk.runtime.backend import default_threads, load_backend, make_interpreter


def test_litert_is_preferred_and_reports_its_version():
    backend = load_backend()
    assert backend.name == "ai-edge-litert"
    assert backend.version == importlib.metadata.version("ai-edge-litert")
    assert str(backend) == f"ai-edge-litert {backend.version}"


def test_cpu_interpreter_uses_the_requested_threads(float_model):
    interpreter, placement = make_interpreter(load_backend(), float_model.read_bytes(), "m", 1, "cpu")
    assert (placement.delegate, placement.num_threads, placement.fallback) == ("cpu", 1, None)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()


def test_default_threads_is_the_usable_cpus(float_model):
    _, placement = make_interpreter(load_backend(), float_model.read_bytes(), "m", None, "cpu")
    assert placement.num_threads == default_threads() >= 1


def test_gpu_request_without_a_gpu_library_falls_back_with_a_warning(float_model):
    from medtk.runtime.backend import GPU_DELEGATE_LIBRARY
    import ctypes

    try:
        ctypes.CDLL(GPU_DELEGATE_LIBRARY)
        has_gpu_library = True
    except OSError:
        has_gpu_library = False
    if has_gpu_library:
        _, placement = make_interpreter(load_backend(), float_model.read_bytes(), "m", 1, "gpu")
        assert placement.delegate in ("gpu", "cpu")
        return
    with pytest.warns(RuntimeWarning, match="gpu delegate unavailable.*running on the CPU"):
        _, placement = make_interpreter(load_backend(), float_model.read_bytes(), "m", 1, "gpu")
    assert placement.delegate == "cpu" and placement.fallback.startswith("gpu delegate unavailable")


def test_auto_falls_back_quietly(float_model, recwarn):
    _, placement = make_interpreter(load_backend(), float_model.read_bytes(), "m", 1, "auto")
    assert placement.delegate in ("gpu", "cpu")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_bad_arguments(float_model, tmp_path):
    model = float_model.read_bytes()
    with pytest.raises(ConfigError, match="expected one of auto, cpu, gpu"):
        make_interpreter(load_backend(), model, "m", 1, "npu")
    with pytest.raises(ConfigError, match="num_threads=-2"):
        make_interpreter(load_backend(), model, "m", -2, "cpu")
    with pytest.raises(ModelError, match="broken: not a usable TFLite model"):
        make_interpreter(load_backend(), model[:1000], "broken", 1, "cpu")

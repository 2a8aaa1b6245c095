"""Shared fixtures: the repository root and the real PneumoniaMNIST data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """$MEDTK_DATA_DIR, else ../shared/data beside the checkout (as CI lays it out)."""
    return Path(os.environ.get("MEDTK_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def pneumonia_npz() -> Path:
    """The real data set; its absence is a failure, never a skip (CI always has it)."""
    path = shared_data_dir() / "pneumoniamnist.npz"
    assert path.is_file(), f"{path} is missing: set MEDTK_DATA_DIR to the folder holding pneumoniamnist.npz"
    return path


@pytest.fixture(scope="session")
def test_models(tmp_path_factory):
    """Small real `.tflite` models (float32, int8, rgb, bare, tampered) built once per session."""
    from tests.runtime.runtime_models import RuntimeModels, build_runtime_models

    return RuntimeModels(**build_runtime_models(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory) -> dict[str, Path]:
    """`onnx_float32` and `onnx_int8` `.onnx` files of the gray test model (the `.tflite` files' weights)."""
    from tests.runtime.runtime_models import build_onnx_models

    return build_onnx_models(tmp_path_factory.mktemp("onnx_models"))


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory) -> dict[str, Path]:
    """Untrained MobileNetV2 32x32 float32 and int8 `.tflite` files for latency tests, built once."""
    from tests.runtime.bench_models import build_bench_models

    return build_bench_models(tmp_path_factory.mktemp("bench_models"))


@pytest.fixture()
def medtk_log(caplog):
    """What medtk's library code logged (INFO and up) while the test ran: `medtk_log.text`."""
    import logging

    logger = logging.getLogger("medtk")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="medtk"):
            yield caplog
    finally:
        logger.removeHandler(caplog.handler)

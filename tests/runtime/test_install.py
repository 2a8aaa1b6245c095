"""`pip install medtk` without extras gives a working `medtk predict` and no TensorFlow (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kwargs)


@pytest.mark.slow
def test_base_install_predicts_without_tensorflow(int8_model, onnx_models, tmp_path):
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", venv])  # no --system-site-packages: nothing leaks in
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = _run([python, "-m", "pip", "install", "--disable-pip-version-check", REPO_ROOT], env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]

    no_tf = _run([python, "-c", "import importlib.util as u; print([m for m in ('tensorflow', 'tf_keras', "
                  "'tensorflow_model_optimization') if u.find_spec(m)])"], env=env)
    assert no_tf.stdout.strip() == "[]", no_tf.stderr

    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (70, 50), dtype=np.uint8))
    result = _run([venv / "bin" / "medtk", "predict", int8_model, image, "--json"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"]["name"] == "ai-edge-litert" and report["variant"] == "int8"
    (prediction,) = report["predictions"]
    assert prediction["label"] in ("normal", "pneumonia")
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=4 / 256)  # int8 softmax: steps of 1/256

    # .onnx needs the onnx extra: without it one line names it; with it the int8 QDQ model runs, still no TensorFlow
    missing = _run([venv / "bin" / "medtk", "predict", onnx_models["onnx_int8"], image], env=env, cwd=tmp_path)
    assert missing.returncode == 1 and 'pip install "medtk[onnx]"' in missing.stderr, missing.stderr
    installed = _run([python, "-m", "pip", "install", "--disable-pip-version-check", f"{REPO_ROOT}[onnx]"], env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    result = _run([venv / "bin" / "medtk", "predict", onnx_models["onnx_int8"], image, "--json"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"]["name"] == "onnxruntime" and report["variant"] == "onnx_int8"
    assert report["provider"] == "CPUExecutionProvider"
    (prediction,) = report["predictions"]
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)  # the softmax stayed float
    no_tf = _run([python, "-c", "import importlib.util as u; print([m for m in ('tensorflow', 'tf_keras', "
                  "'tensorflow_model_optimization', 'onnx') if u.find_spec(m)])"], env=env)
    assert no_tf.stdout.strip() == "[]", no_tf.stderr

"""`pip install medtk` without extras gives a working `medtk predict` and no TensorFlow (docs/ARCHITECTURE.md), with
the newest dependencies pip picks and with the oldest the pyproject allows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kwargs)


def _fresh_venv(venv: Path, interpreter: str = sys.executable) -> tuple[Path, dict[str, str]]:
    """A new venv (no --system-site-packages: nothing leaks in) and an environment without this one's."""
    created = _run([interpreter, "-m", "venv", venv])
    assert created.returncode == 0, created.stderr
    return venv / "bin" / "python", {key: value for key, value in os.environ.items()
                                     if key not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.mark.slow
def test_base_install_predicts_without_tensorflow(int8_model, onnx_models, tmp_path):
    venv = tmp_path / "venv"
    python, env = _fresh_venv(venv)
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


def _python_3_10() -> str | None:
    """A working Python 3.10 (on PATH, or one pyenv installed without making it the active version)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in (shutil.which("python3.10"), *map(str, sorted(pyenv.glob("versions/3.10*/bin/python3.10")))):
        if candidate and _run([candidate, "-c", "import venv"]).returncode == 0:
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.skipif(_python_3_10() is None, reason="no Python 3.10 on this machine")
def test_the_base_install_runs_on_python_3_10(int8_model, tmp_path):
    """pyproject allows 3.10 (what JetPack 6 and Ubuntu 22.04 ship). `tomllib` came in 3.11: the run
    configuration, the device profiles and serve's rules read TOML through medtk.tomlcompat (tomli on 3.10);
    before, `import medtk.config` failed there."""
    venv = tmp_path / "py310"
    python, env = _fresh_venv(venv, _python_3_10())
    installed = _run([python, "-m", "pip", "install", "--disable-pip-version-check", REPO_ROOT], env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert _run([python, "-c", "import sys; print(sys.version_info[:2])"], env=env).stdout.strip() == "(3, 10)"
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (70, 50), dtype=np.uint8))
    result = _run([venv / "bin" / "medtk", "predict", int8_model, image, "--json"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["runtime"]["python"].startswith("3.10")
    bench = _run([venv / "bin" / "medtk", "bench", int8_model, "--device", "jetson-orin-nano", "--runs", "2"],
                 env=env, cwd=tmp_path)
    assert bench.returncode == 0 and "ESTIMATE for jetson-orin-nano" in bench.stdout, bench.stderr[-3000:]
    spec = tmp_path / "spec.toml"
    spec.write_text("[train]\nepochs = 2\n")
    loaded = _run([python, "-c", f"from medtk.config import load_config; print(load_config({str(spec)!r}, {{}}).train.epochs)"],
                  env=env)
    assert loaded.stdout.strip() == "2", loaded.stderr[-3000:]


@pytest.mark.slow
def test_the_base_install_works_at_its_declared_floors(int8_model, tmp_path):
    """Every base dependency at the lowest version pyproject allows (uv's lowest-direct resolution): the CLI
    starts (typer < 0.15.4 took click 8.2+ and failed on every command), a signed model verifies, PNG and
    DICOM images give the probabilities this environment gives, and nothing reaches for the network
    (pydicom 3.0.0 fetched its test files on import)."""
    from medtk.runtime import Classifier
    from medtk.runtime.signing import generate_key_pair, sign_model
    from tests.runtime.dicom_builders import image_dataset, write_dicom

    venv = tmp_path / "floors"
    python, env = _fresh_venv(venv)
    assert _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv"], env=env).returncode == 0
    floors = tmp_path / "floors.txt"
    base = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors.write_text("\n".join(base))  # pyproject's base list itself, not an installed (maybe older) metadata
    installed = _run([venv / "bin" / "uv", "pip", "install", "--python", python, "--resolution", "lowest-direct",
                      "-r", floors], env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    installed = _run([venv / "bin" / "uv", "pip", "install", "--python", python, "--no-deps", REPO_ROOT], env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    versions = json.loads(_run([python, "-m", "pip", "list", "--format=json"], env=env).stdout)
    versions = {row["name"].lower(): row["version"] for row in versions}
    assert versions["numpy"] == "1.24.0" and versions["ai-edge-litert"] == "1.2.0", versions  # the floors, not today's

    for command in ("predict", "serve", "train", "bench", "report"):
        helped = _run([venv / "bin" / "medtk", command, "--help"], env=env)
        assert helped.returncode == 0, f"medtk {command} --help: {helped.stderr[-1500:]}"

    private, public = generate_key_pair(tmp_path / "key.pem")
    signed = tmp_path / "signed.tflite"
    signed.write_bytes(sign_model(int8_model, private))
    rng = np.random.default_rng(3)
    png = tmp_path / "img.png"
    cv2.imwrite(str(png), rng.integers(0, 256, (20, 24), dtype=np.uint8))  # enlarged: the resize rule matters
    dicom = write_dicom(tmp_path / "img.dcm", image_dataset(rng.integers(0, 4096, (90, 70), dtype=np.uint16),
                                                            bits_stored=12))
    result = _run([venv / "bin" / "medtk", "predict", signed, png, dicom, "--json", "--trusted-key", public],
                  env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "download" not in result.stderr, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["runtime"]["numpy"] == "1.24.0" and report["integrity"]["status"] == "signed"
    here = Classifier(int8_model, num_threads=1)
    for prediction, image in zip(report["predictions"], (png, dicom)):
        expected = here.predict(image).probabilities
        assert prediction["probabilities"] == pytest.approx(expected, abs=1e-6), image.name

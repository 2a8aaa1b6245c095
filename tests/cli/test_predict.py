"""`medtk predict` on a real TFLite model: table, JSON, CAM overlays, one bad image among good ones."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from medtk.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def models(test_models) -> dict[str, Path]:
    return {"float32": test_models.float32, "bare": test_models.bare}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_images")
    rng = np.random.default_rng(0)
    paths = {"a": folder / "a.png", "b": folder / "sub" / "a.png", "c": folder / "c.tif"}
    paths["b"].parent.mkdir()
    cv2.imwrite(str(paths["a"]), rng.integers(0, 256, (80, 100), dtype=np.uint8))
    cv2.imwrite(str(paths["b"]), rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    cv2.imwrite(str(paths["c"]), rng.integers(0, 65536, (50, 50), dtype=np.uint16))
    paths["bad"] = folder / "notes.png"
    paths["bad"].write_text("not an image")
    return paths


def test_table(models, images):
    args = ["predict", str(models["float32"]), str(images["a"]), str(images["c"]), "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "ai-edge-litert" in lines[0] and "delegate cpu" in lines[0] and "1 threads" in lines[0]
    assert lines[1].split() == ["image", "label", "normal", "pneumonia"]
    assert len(lines) == 4
    for line in lines[2:]:
        _, label, normal, pneumonia = line.split()
        assert label in ("normal", "pneumonia")
        assert float(normal) + float(pneumonia) == pytest.approx(1.0, abs=2e-4)


def test_json_and_cam_overlays(models, images, tmp_path):
    cams = tmp_path / "cams"
    args = ["predict", str(models["float32"]), str(images["a"]), str(images["b"]), "--json", "--cam-dir", str(cams)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"]["name"] == "ai-edge-litert" and report["labels"] == ["normal", "pneumonia"]
    assert report["runtime"]["litert"] == report["backend"]["version"] == importlib.metadata.version("ai-edge-litert")
    assert report["runtime"]["numpy"] == np.__version__ and report["runtime"]["machine"] == platform.machine()
    assert report["errors"] == [] and len(report["predictions"]) == 2
    first, second = report["predictions"]
    assert first["image"] == str(images["a"]) and sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    # same stem in two folders: two overlays, each the size of its image, RGB
    assert Path(first["cam_overlay"]).name == "a_cam.png" and Path(second["cam_overlay"]).name == "a_cam_2.png"
    assert cv2.imread(first["cam_overlay"]).shape == (80, 100, 3)
    assert cv2.imread(second["cam_overlay"]).shape == (40, 30, 3)
    assert sorted(p.name for p in cams.iterdir()) == ["a_cam.png", "a_cam_2.png"]  # no temporary files left


def test_json_rows_are_the_predictions_own_json_form(models, images):
    from medtk.runtime import JSON_DIGITS, Classifier

    result = runner.invoke(app, ["predict", str(models["float32"]), str(images["c"]), "--json", "--threads", "1"])
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["predictions"]
    expected = Classifier(models["float32"], num_threads=1).predict(images["c"]).to_dict(digits=JSON_DIGITS)
    assert row == {"image": str(images["c"]), **expected, "cam_overlay": None}

def test_one_bad_image_is_reported_and_the_rest_run(models, images):
    args = ["predict", str(models["float32"]), str(images["a"]), str(images["bad"]), str(images["c"]), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [row["image"] for row in report["predictions"]] == [str(images["a"]), str(images["c"])]
    assert report["errors"][0]["image"] == str(images["bad"])
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("medtk: error:")]
    expected = f"medtk: error: {images['bad']}: not a readable image (not a PNG, JPEG, TIFF, BMP or DICOM file)"
    assert error_lines == [expected]


def test_missing_image_in_table_mode(models, images, tmp_path):
    result = runner.invoke(app, ["predict", str(models["float32"]), str(tmp_path / "absent.png"), str(images["a"])])
    assert result.exit_code == 1
    assert "absent.png: no such file" in result.stderr
    assert len(result.stdout.splitlines()) == 3  # backend, header, the good image


def test_bad_model_is_one_line_exit_1(images, tmp_path):
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"\x00" * 64)
    result = runner.invoke(app, ["predict", str(fake), str(images["a"])])
    assert result.exit_code == 1
    expected = f"medtk: error: {fake}: not a TFLite model (no 'TFL3' flatbuffer identifier) nor an ONNX model (no graph)"
    assert result.stderr.strip().splitlines() == [expected]


def test_model_without_metadata_warns_in_one_line(models, images):
    result = runner.invoke(app, ["predict", str(models["bare"]), str(images["a"]), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["labels"] == ["class_0", "class_1"]
    warnings = [line for line in result.stderr.splitlines() if "no medtk metadata" in line]
    assert len(warnings) == 1 and warnings[0].startswith("medtk: warning:")


def test_gpu_request_runs_on_gpu_or_falls_back_and_says_so(models, images):
    result = runner.invoke(app, ["predict", str(models["float32"]), str(images["a"]), "--delegate", "gpu", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    if report["delegate"] != "gpu":  # no GPU delegate library on this machine
        assert report["delegate"] == "cpu" and report["delegate_fallback"].startswith("gpu delegate unavailable")
        assert "medtk: warning:" in result.stderr and "gpu delegate unavailable" in result.stderr


def test_a_variant_that_failed_the_gate_warns_on_stderr_and_in_the_json(test_models, images, tmp_path):
    from tests.runtime.runtime_models import with_quality_gate

    from medtk.runtime.metadata import GateFailure, ModelCalibration, QualityGate

    failed = tmp_path / "int8.tflite"
    calibration = ModelCalibration(temperature=1.0, applied=False, fitted_temperature=2.5,
                                   reason="fitted temperature 2.500 not applied (the model ships uncalibrated)")
    failed.write_bytes(with_quality_gate(test_models.int8.read_bytes(),
                                         QualityGate(passed=False, failures=(GateFailure("max_auc_drop", 0.07, 0.01),)),
                                         calibration))
    result = runner.invoke(app, ["predict", str(failed), str(images["a"]), "--json", "--threads", "1"])
    assert result.exit_code == 0, result.stderr  # a warning, not a refusal: predict is for looking at models
    warning = (f"{failed}: variant int8 failed compress's quality gate (max_auc_drop 0.07 > 0.01); it is not the "
               "variant compress recommends - do not deploy it")
    assert [line for line in result.stderr.splitlines() if "quality gate" in line] == [f"medtk: warning: {warning}"]
    report = json.loads(result.stdout)
    assert report["model_warnings"] == [warning]
    assert report["quality_gate"] == {"passed": False,
                                      "failures": [{"gate": "max_auc_drop", "measured": 0.07, "limit": 0.01}]}
    assert report["calibration"] == {"temperature": 1.0, "applied": False, "fitted_temperature": 2.5,
                                     "reason": calibration.reason}
    passed = runner.invoke(app, ["predict", str(test_models.float32), str(images["a"]), "--json", "--threads", "1"])
    assert json.loads(passed.stdout)["quality_gate"] is None and "quality gate" not in passed.stderr

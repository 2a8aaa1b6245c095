"""Metadata embedded in every exported file reads back without TensorFlow; gzip size is gzip -9."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from medtk.compress.artifacts import gzip_size

READ_WITHOUT_TF = """
import json, sys
from dataclasses import asdict
from medtk.runtime.container import content_sha256
from medtk.runtime.metadata import METADATA_NAME, read_metadata
from pathlib import Path
out = {}
for path in sorted([*Path(sys.argv[1]).glob("*.tflite"), *Path(sys.argv[1]).glob("*.onnx")]):
    md = read_metadata(path)
    out[path.stem] = {"variant": md.variant, "labels": list(md.labels), "dtype": md.input.dtype,
                      "size": md.input.size, "interpolation": md.input.interpolation,
                      "preprocessing": md.input.preprocessing, "metrics": md.metrics, "provenance": md.provenance,
                      "intended_use": md.intended_use,
                      "sha_ok": md.weights_sha256 == content_sha256(path.read_bytes(), METADATA_NAME),
                      "cam_geometry": md.cam_geometry.to_dict() if md.cam_geometry else None,
                      "quality_gate": asdict(md.quality_gate) if md.quality_gate else None,
                      "calibration": asdict(md.calibration), "bytes": path.stat().st_size}
assert "tensorflow" not in sys.modules and "tf_keras" not in sys.modules
print(json.dumps(out))
"""


def test_gzip_size_is_gzip_level_9():
    data = bytes(range(256)) * 100 + bytes(10000)
    assert gzip_size(data) == len(gzip.compress(data, compresslevel=9, mtime=0)) < len(data)


@pytest.mark.slow
def test_metadata_reads_back_without_tensorflow(compressed):
    from medtk.runtime.imaging import INTERPOLATION_RULE, PREPROCESSING_NOTE

    from medtk.train.cam_geometry import cam_geometry
    from medtk.train.model import load_classifier

    run, _ = compressed
    geometry = cam_geometry(load_classifier(run / "model.keras"))
    assert geometry is not None
    done = subprocess.run([sys.executable, "-c", READ_WITHOUT_TF, str(run / "export")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    compress = json.loads((run / "compress.json").read_text())
    report = {v["name"]: v for v in compress["variants"]}
    decision = json.loads((run / "training.json").read_text())["calibration"]
    assert set(found) == set(report)
    for name, md in found.items():
        assert md["variant"] == name and md["labels"] == ["normal", "lesion"] and md["size"] == 64
        assert md["dtype"] == ("uint8" if name.startswith("int8") else "float32")
        assert md["interpolation"] == INTERPOLATION_RULE and md["preprocessing"] == PREPROCESSING_NOTE
        assert md["metrics"]["test_auc"] == pytest.approx(report[name]["test"]["auc"])
        assert md["provenance"]["run"] == "run" and md["provenance"]["data_source"] == "synthetic:400"
        assert {"config_sha256", "medtk_version", "tensorflow_version", "exported"} <= set(md["provenance"])
        assert md["intended_use"] and md["sha_ok"]
        assert md["cam_geometry"] == geometry.to_dict()  # every variant, pruned and QAT ones too
        assert md["bytes"] == report[name]["size_bytes"]  # compress.json describes the published file
        # training's calibration decision, times the variant's own where its validation outputs justified one
        own = report[name]["calibration"]
        assert md["calibration"]["temperature"] == pytest.approx(report[name]["temperature"], rel=1e-5)
        assert md["calibration"]["temperature"] == pytest.approx(decision["temperature"] * own["temperature"], rel=1e-5)
        assert md["calibration"]["applied"] == (decision["applied"] or own["applied"])
        assert (decision["reason"] in md["calibration"]["reason"]) != own["applied"]
        assert own["reason"] in md["calibration"]["reason"]
        gate = md["quality_gate"]  # the gate outcome sealed into the file agrees with compress.json
        if name == "float32":
            assert gate is None  # the reference is not gated
            continue
        assert gate["passed"] == (report[name]["status"] == "passed")
        messages = [m for m in compress["gate"]["failures"] if m.startswith(f"{name}:")]
        assert [f["gate"] for f in gate["failures"]] == [_gate_of(m) for m in messages]
    assert any(not md["quality_gate"]["passed"] for name, md in found.items() if name != "float32"), \
        "no variant failed the gate (--max-auc-drop 0): the check would be empty"
    if compress["recommended"] not in (None, "float32"):  # what the verdict says to deploy passed, in its file too
        assert found[compress["recommended"]]["quality_gate"]["passed"]


def _gate_of(message: str) -> str:
    """Which gate a compress.json failure message is about."""
    for text, gate in (("test AUC", "max_auc_drop"), ("sensitivity", "max_sensitivity_drop"),
                       ("CAM correlation", "min_cam_correlation"), ("CAM peak", "max_cam_peak_shift"),
                       ("calibration error", "max_ece_increase"),
                       ("sparsity", "max_sparsity_deviation")):
        if text in message:
            return gate
    raise AssertionError(f"unknown gate message: {message}")

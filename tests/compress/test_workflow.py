"""`medtk compress` end to end on a small trained run: every variant is a real TFLite file that loads in
LiteRT with the deployable-model contract, the pruned + QAT model keeps its sparsity, int8 agrees with
float on the run's test images, and a second run replaces the first cleanly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

EXPECTED = ("float32", "float16", "dynamic", "int8", "int8_pqat", "onnx_float32", "onnx_int8")
CUSTOM_OP = 32  # BuiltinOperator.CUSTOM: a TF/Flex op would show up as one


def _report(run: Path) -> dict:
    return json.loads((run / "compress.json").read_text())


@pytest.mark.slow
def test_every_variant_loads_in_litert_with_the_model_contract(compressed):
    from ai_edge_litert.interpreter import Interpreter

    from medtk.runtime.flatbuffer import operator_codes

    run, _ = compressed
    report = _report(run)
    control = report["accuracy_control"]
    mixed = ["int8_mixed"] if control["float_layers"] else []
    onnx_mixed = ["onnx_int8_mixed"] if report["onnx_accuracy_control"]["float_layers"] else []
    assert [v["name"] for v in report["variants"]] == [*EXPECTED[:4], *mixed, *EXPECTED[4:], *onnx_mixed]
    for entry in report["variants"]:
        if entry["name"].startswith("onnx_"):
            continue  # test_onnx_variants_are_measured_through_onnx_runtime_and_gated
        path = run / entry["path"]
        assert path == run / "export" / f"{entry['name']}.tflite" and path.is_file()
        interpreter = Interpreter(model_path=str(path))
        signature = interpreter.get_signature_list()["serving_default"]
        assert signature["inputs"] == ["pixels"] and sorted(signature["outputs"]) == ["cam", "probs"]
        runner = interpreter.get_signature_runner("serving_default")
        pixels = runner.get_input_details()["pixels"]
        int8 = entry["input_dtype"] == "uint8"
        assert pixels["dtype"] == (np.uint8 if int8 else np.float32)
        assert list(pixels["shape"]) == [1, 64, 64, 1]
        out = runner(pixels=np.full((1, 64, 64, 1), 128, dtype=pixels["dtype"]))
        assert out["probs"].shape == (1, 2) and out["cam"].shape == (1, 2, 2, 2)
        assert out["probs"].sum() == pytest.approx(1.0, abs=0.02)
        codes = set(operator_codes(path.read_bytes()))
        assert CUSTOM_OP not in codes, f"{path.name} uses custom (non-builtin) ops"
        assert entry["size_bytes"] == path.stat().st_size and 0 < entry["gzip_bytes"] < entry["size_bytes"]
    assert not list(run.glob(".export-*")), "staging folder left behind"


@pytest.mark.slow
def test_sizes_shrink_and_pqat_keeps_its_sparsity(compressed):
    run, _ = compressed
    variants = {v["name"]: v for v in _report(run)["variants"]}
    float_size = variants["float32"]["size_bytes"]
    assert variants["float16"]["size_bytes"] < 0.55 * float_size
    assert variants["int8"]["size_bytes"] < 0.3 * float_size
    assert variants["int8_pqat"]["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert variants["int8_pqat"]["gzip_bytes"] < 0.8 * variants["int8"]["gzip_bytes"]
    compression = _report(run)["compression"]
    assert compression["sparsity_after_qat"] == pytest.approx(0.5, abs=0.02)
    assert compression["schedule"]["end_step"] <= compression["schedule"]["total_steps"]


@pytest.mark.slow
def test_int8_probabilities_agree_with_float_on_the_test_images(compressed):
    from medtk.config import load_config
    from medtk.data import load_dataset
    from medtk.runtime import Classifier
    from medtk.train.pipeline import prepare_split

    run, _ = compressed
    config = load_config(run / "config.toml")
    test = load_dataset(config.data.src, seed=config.data.seed, split_file=run / "split.csv").splits["test"]
    images = prepare_split(test, 64, 1)
    reference, _ = Classifier(run / "export" / "float32.tflite").predict_prepared(images)
    quantized, _ = Classifier(run / "export" / "int8.tflite").predict_prepared(images)
    assert reference.std(axis=0).max() > 1e-3, "the fixture model predicts a constant; the check would be empty"
    assert np.abs(quantized - reference).mean() < 0.1
    assert (quantized.argmax(axis=1) == reference.argmax(axis=1)).mean() >= 0.9


@pytest.mark.slow
def test_report_records_reference_deltas_and_cam_agreement(compressed):
    run, _ = compressed
    report = _report(run)
    reference = report["reference"]
    assert reference["variant"] == "float32" and reference["keras_test"]["auc"] is not None
    for entry in report["variants"]:
        assert set(entry["test"]) >= {"auc", "accuracy", "sensitivity", "specificity"}
        assert entry["delta_auc"] == pytest.approx(entry["test"]["auc"] - reference["test"]["auc"], abs=1e-6)
        cam = entry["cam_agreement"]
        assert 0.0 <= cam["peak_match"] <= cam["peak_within_one"] <= 1.0
    assert report["variants"][0]["cam_agreement"]["correlation"] == pytest.approx(1.0)
    assert "not the latency" in report["note"]


@pytest.mark.slow
def test_accuracy_control_is_recorded_and_chose_on_validation_only(compressed):
    from medtk.variants import get_variant

    run, _ = compressed
    report = _report(run)
    control = report["accuracy_control"]
    variants = {v["name"]: v for v in report["variants"]}
    assert control["val_reference"] == pytest.approx(variants["float32"]["val"]["auc"], abs=1e-6)
    assert control["full_int8_val"] == pytest.approx(variants["int8"]["val"]["auc"], abs=1e-6)
    cam = control["full_int8_val_cam"]  # the CAM gate, checked on validation at its interval's low end
    assert -1 <= cam["correlation_low"] <= cam["correlation"] <= 1 and cam["peak_shift_high"] >= cam["peak_shift"] >= 0
    if control["float_layers"]:  # full int8 lost validation AUC: int8_mixed carries its float ops
        assert control["ranking"] in ("held-out agreement", "network tail") and 1 <= len(control["float_layers"]) <= 2
        assert [kept["tensor"] for kept in control["kept_float"]] == control["float_layers"] and control["held_out_images"] > 0
        assert variants["int8_mixed"]["float_layers"] == control["float_layers"]
        assert control["val"] == pytest.approx(variants["int8_mixed"]["val"]["auc"], abs=1e-6)
    else:
        assert control["ranking"] == "none" and "int8_mixed" not in variants
    onnx_control = report["onnx_accuracy_control"]  # the same search for the .onnx, against onnx_float32
    assert onnx_control["val_reference"] == pytest.approx(variants["onnx_float32"]["val"]["auc"], abs=1e-6)
    assert onnx_control["full_int8_val"] == pytest.approx(variants["onnx_int8"]["val"]["auc"], abs=1e-6)
    if onnx_control["float_layers"]:  # no per-op ranking from ONNX Runtime: the network's tail
        assert onnx_control["ranking"] == "network tail" and len(onnx_control["float_layers"]) <= 2
        assert variants["onnx_int8_mixed"]["float_layers"] == onnx_control["float_layers"]
        assert all(kept["noise"] is None and "last" in kept["reason"] for kept in onnx_control["kept_float"])
    else:
        assert "onnx_int8_mixed" not in variants
    chosen = report["recommended"]
    assert chosen == report["recommended_by_format"]["tflite"]
    assert set(report["not_recommended"]) == set(variants) - set(report["recommended_by_format"].values())
    if chosen is not None:  # --int8: the fastest passing integer .tflite variant here, when one passes (issue 22)
        passing = [v for v in variants.values() if v["status"] == "passed" and get_variant(v["name"]).format == "tflite"]
        pool = [v for v in passing if get_variant(v["name"]).integer] or passing
        fastest = min(v["latency_ms"] for v in pool)
        assert variants[chosen]["latency_ms"] <= 1.1 * fastest  # within the tie, the smaller file
        assert variants[chosen]["size_bytes"] == min(v["size_bytes"] for v in pool if v["latency_ms"] <= 1.1 * fastest)
        assert "by latency measured on this host" in report["recommendation"]
        assert "integer one first (--int8)" in report["recommendation"]


@pytest.mark.slow
def test_every_variant_is_timed_through_its_own_engine_on_this_host(compressed):
    """The latency the recommendation weighs: every final file timed in alternating rounds, with its spread
    and the host it was measured on (compress/latency.py)."""
    run, result = compressed
    report = _report(run)
    setting = report["latency"]
    assert setting["rounds"] >= 3 and setting["threads"] >= 1 and "CPUs usable" in setting["host"]
    for entry in report["variants"]:
        low, high = entry["latency_range_ms"]
        assert 0 < low <= entry["latency_ms"] <= high, entry["name"]  # the pooled median lies between round medians
    assert "ms: p50 of one image through the variant's own engine here" in result.output


@pytest.mark.slow
def test_second_run_replaces_outputs_and_removes_stale_variants(compressed, tmp_path: Path):
    from medtk.cli import app

    source, _ = compressed
    run = tmp_path / "run"
    shutil.copytree(source, run)
    (run / "export" / "pruned_int8.tflite").write_bytes(b"left over from an older run")
    # --no-onnx: the first run's ONNX variants are stale too (and the export costs CI a minute)
    result = CliRunner().invoke(app, ["compress", str(run), "--max-auc-drop", "1", "--no-onnx"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run / "export").iterdir()) == ["dynamic.tflite", "float16.tflite", "float32.tflite"]
    assert [v["name"] for v in _report(run)["variants"]] == ["float32", "float16", "dynamic"]
    assert _report(run)["gate"]["passed"] is True
    assert "float32" in result.output and "gzip" in result.output


@pytest.mark.slow
def test_gate_marks_the_failed_variants_and_exits_3_only_without_a_passing_int8(compressed):
    from medtk.variants import get_variant

    run, result = compressed
    report = json.loads((run / "compress.json").read_text())
    gate = report["gate"]
    assert gate["max_auc_drop"] == 0 and gate["passed"] is False and gate["failures"]
    worse = {v["name"] for v in report["variants"] if v["delta_auc"] < 0}
    assert worse, "no variant lost AUC, the gate had nothing to catch"
    assert {v["name"] for v in report["variants"] if v["status"] == "failed"} == worse
    int8_passed = [v["name"] for v in report["variants"] if v["status"] == "passed" and get_variant(v["name"]).integer
                   and get_variant(v["name"]).format == "tflite"]  # exit 3 is about the .tflite asked for
    if int8_passed:  # a failing variant beside a passing int8 is a warning; the recommended one is deployable
        assert result.exit_code == 0, result.output
        assert all(f"quality gate: {name}:" in result.output for name in worse)
    else:
        assert result.exit_code == 3, result.output
        line = next(l for l in result.output.splitlines() if l.startswith("medtk: error:"))
        assert "quality gate failed" in line and all(name in line for name in worse)
        assert "no int8 variant passes every gate" in line
    for entry in report["variants"]:  # failed variants stay for inspection
        assert (run / entry["path"]).is_file()
    assert "variant" in result.output and "int8_pqat" in result.output  # the table is printed before the error




@pytest.mark.slow
def test_onnx_variants_are_measured_through_onnx_runtime_and_gated(compressed):
    from medtk.runtime import Classifier
    from medtk.runtime.metadata import read_metadata

    run, result = compressed
    report = _report(run)
    variants = {v["name"]: v for v in report["variants"]}
    for name in [name for name in variants if name.startswith("onnx_")]:
        entry = variants[name]
        path = run / entry["path"]
        assert path == run / "export" / f"{name}.onnx" and entry["size_bytes"] == path.stat().st_size
        assert entry["status"] in ("passed", "failed") and entry["cam_agreement"]["correlation"] is not None
        classifier = Classifier(path, num_threads=1)
        assert classifier.backend.name == "onnxruntime" and classifier.verification.status == "sealed"
        metadata = read_metadata(path)
        # the threshold was chosen on validation through ONNX Runtime, and the file carries it
        assert metadata.operating_point.threshold == pytest.approx(entry["val"]["threshold"])
        assert metadata.metrics["test_auc"] == pytest.approx(entry["test"]["auc"])
        assert metadata.provenance == read_metadata(run / "export" / "float32.tflite").provenance
    # float32 ONNX computes what float32 TFLite does: the same AUC, maps that agree
    assert variants["onnx_float32"]["test"]["auc"] == pytest.approx(variants["float32"]["test"]["auc"], abs=1e-3)
    assert variants["onnx_float32"]["cam_agreement"]["correlation"] > 0.999
    assert variants["onnx_int8"]["size_bytes"] < 0.35 * variants["onnx_float32"]["size_bytes"]
    by_format = report["recommended_by_format"]
    assert by_format["tflite"] == report["recommended"]
    onnx = [name for name in variants if name.startswith("onnx_")]
    assert by_format["onnx"] in (None, *onnx)
    assert (by_format["onnx"] is None) == all(variants[n]["status"] == "failed" for n in onnx)
    assert "onnx_int8" in result.output and "recommended .onnx" in result.output

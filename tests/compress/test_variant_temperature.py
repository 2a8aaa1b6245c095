"""Each variant gets training's calibration rule on its own validation outputs, and a temperature it
justifies is folded into the file itself (`medtk.compress.variant_temperature`).

The rewrite is checked on every real exported file of the session's compressed run, through LiteRT
and ONNX Runtime: float32, float16 (float16 weights behind DEQUANTIZE), dynamic (int8 weights with
scales), int8 (float head), int8_pqat (an int8 head: conv -> MEAN -> SOFTMAX in int8), and the ONNX
pair. The rule is checked end to end on a copy of that run whose model was made 10x over-confident.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

FACTOR = 0.4


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _outputs(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from medtk.runtime import Classifier

    return Classifier(path, num_threads=1).predict_prepared(images)


def _engine_outputs(model: bytes, file_format: str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probs, cams) straight from LiteRT or ONNX Runtime: a rewritten file no longer matches its seal,
    which `Classifier` rightly refuses."""
    if file_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(model)
        names = [output.name for output in session.get_outputs()]
        rows = [dict(zip(names, session.run(None, {"pixels": image[None]}))) for image in images]
    else:
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_content=model).get_signature_runner()
        dtype = runner.get_input_details()["pixels"]["dtype"]
        rows = [runner(pixels=image[None].astype(dtype)) for image in images]
    return np.concatenate([row["probs"] for row in rows]), np.concatenate([row["cam"] for row in rows])


def _images(channels: int, size: int, count: int = 6) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, size, size, channels)).astype(np.float32)


@pytest.mark.slow
def test_scaling_the_class_scores_of_every_exported_file_is_a_temperature(compressed):
    from medtk.compress.variant_temperature import scale_class_scores
    from medtk.variants import format_of

    run, _ = compressed
    files = sorted((run / "export").iterdir())
    assert {f.stem for f in files} >= {"float32", "float16", "dynamic", "int8", "int8_pqat", "onnx_float32", "onnx_int8"}
    for path in files:
        from medtk.runtime import Classifier

        classifier = Classifier(path, num_threads=1)
        images = _images(classifier.channels, classifier.input_size)
        file_format = format_of(path.stem)
        probs, cams = _engine_outputs(path.read_bytes(), file_format, images)
        scaled = scale_class_scores(path.read_bytes(), file_format, FACTOR)
        scaled_probs, scaled_cams = _engine_outputs(scaled, file_format, images)
        # float16 stores the scaled weights in float16 again: one rounding, relative 2^-11
        rtol = 2e-3 if path.stem == "float16" else 1e-5
        np.testing.assert_allclose(scaled_cams, FACTOR * cams, rtol=rtol, atol=1e-6, err_msg=path.name)
        tempered = _softmax(FACTOR * cams.astype(np.float64).mean(axis=(1, 2)))
        step = 1 / 256 if path.stem == "int8_pqat" else 1e-3 if path.stem == "float16" else 1e-5  # pqat: int8 softmax
        np.testing.assert_allclose(scaled_probs, tempered, atol=step, err_msg=path.name)
        assert not np.allclose(scaled_probs, probs, atol=1e-3), f"{path.name}: the probabilities did not change"


def test_a_model_without_a_cam_output_or_a_sane_factor_is_refused(test_models):
    from medtk.errors import ModelError
    from medtk.runtime.flatbuffer import _pack, schema, scale_class_scores

    model = test_models.float32.read_bytes()
    with pytest.raises(ValueError, match="factor must be"):
        scale_class_scores(model, 0.0)
    with pytest.raises(ModelError, match="not a TFLite model"):
        scale_class_scores(b"not a model at all", 2.0)
    tflite = schema()
    tree = tflite.ModelT.InitFromObj(tflite.Model.GetRootAsModel(model, 0))
    for output in tree.signatureDefs[0].outputs:
        output.name = b"heat" if output.name in (b"cam", "cam") else output.name
    with pytest.raises(ModelError, match="no single signature output 'cam'"):
        scale_class_scores(_pack(tree, len(model) + 1024), 2.0)


def test_the_rule_adds_a_temperature_only_where_held_out_folds_say_it_helps():
    from medtk.compress.variant_temperature import decide_variant_temperature
    from medtk.runtime.metadata import ModelCalibration

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, (400, 2))
    labels = np.array([rng.choice(2, p=p) for p in _softmax(logits)])
    cams = np.repeat(np.repeat(logits[:, None, None, :], 2, axis=1), 2, axis=2)  # logits = the CAM's mean
    training = ModelCalibration(temperature=2.0, applied=True, reason="temperature 2.000 applied: ...",
                                fitted_temperature=2.0)

    calibrated = decide_variant_temperature(cams, labels, training)
    assert not calibrated.decision.applied and calibrated.factor == 1.0
    assert calibrated.calibration.temperature == 2.0 and calibrated.calibration.applied
    assert "this variant keeps training's temperature" in calibrated.calibration.reason

    over_confident = decide_variant_temperature(3.0 * cams, labels, training)
    assert over_confident.decision.applied
    assert over_confident.decision.temperature == pytest.approx(3.0, rel=0.25)
    assert over_confident.factor == pytest.approx(1 / over_confident.decision.temperature)
    assert over_confident.calibration.temperature == pytest.approx(2.0 * over_confident.decision.temperature)
    assert "this variant's own" in over_confident.calibration.reason

    few = decide_variant_temperature(3.0 * cams[:40], labels[:40], training)
    assert not few.decision.applied and "at least 30 of every class" in few.decision.reason
    none = decide_variant_temperature(cams[:0], labels[:0], training)
    assert not none.decision.applied and none.calibration.temperature == 2.0 and "no validation images" in none.decision.reason


@pytest.mark.slow
def test_an_over_confident_model_gets_its_temperature_back_in_every_variant(trained_run, tmp_path):
    """A copy of the trained run whose Keras model is 10x over-confident (its `cam` layer scaled by 10):
    the rule finds it on every variant's validation outputs, each file carries the temperature it
    found (in its metadata and in its probabilities), and test ECE falls."""
    from medtk.cli import app
    from medtk.run import Run
    from medtk.runtime import Classifier
    from medtk.train.head_folds import fold_temperature
    from medtk.train.model import load_classifier

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    model = load_classifier(run / "model.keras")
    fold_temperature(model, 0.1)
    model.save(run / "model.keras")
    result = CliRunner().invoke(app, ["compress", str(run), "--int8", "--no-prune", "--no-qat",
                                      "--no-accuracy-control", "--max-auc-drop", "1", "--calibration", "50"])
    assert result.exit_code in (0, 3), result.output
    trained = Run(run).training().temperature
    report = json.loads((run / "compress.json").read_text())
    assert {v["name"] for v in report["variants"]} == {"float32", "float16", "dynamic", "int8", "onnx_float32",
                                                        "onnx_int8"}
    for entry in report["variants"]:
        own = entry["calibration"]
        assert own["applied"], f"{entry['name']}: {own['reason']}"
        assert 4.0 < own["temperature"] < 20.0, entry["name"]
        assert entry["temperature"] == pytest.approx(trained * own["temperature"], rel=1e-5)
        carried = Classifier(run / entry["path"], num_threads=1).metadata.calibration
        assert carried.temperature == pytest.approx(entry["temperature"], rel=1e-5) and carried.applied
    over_confident = _ece_without_refit(run, report)
    assert report["variants"][0]["test"]["ece"] < over_confident

    from medtk.report.inputs import read_run
    from medtk.report.results import compression_section

    html = str(compression_section(read_run(run)))
    own = report["variants"][0]["calibration"]["temperature"]
    assert f"{report['variants'][0]['temperature']:.3f} (own x{own:.2f})" in html


def _ece_without_refit(run: Path, report: dict) -> float:
    """Test ECE of the float32 file with its own temperature taken out again."""
    from medtk.clinical.calibration import expected_calibration_error, softmax
    from medtk.compress.inputs import load_inputs
    from medtk.compress.options import CompressOptions
    from medtk.run import Run

    inputs = load_inputs(Run(run), CompressOptions(int8=True))
    _, cams = _outputs(run / report["variants"][0]["path"], inputs.test_images)
    logits = cams.astype(np.float64).mean(axis=(1, 2)) * report["variants"][0]["calibration"]["temperature"]
    return expected_calibration_error(softmax(logits), inputs.test_labels)

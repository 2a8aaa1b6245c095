"""`medtk predict --data` and `medtk eval RESULTS` as commands: options checked before anything is
created, refusals in one line, and eval's numbers are `medtk.clinical`'s on the same arrays."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from medtk.cli import app
from medtk.runtime import Classifier
from tests.batch.conftest import THRESHOLD, read_rows

runner = CliRunner()


@pytest.mark.parametrize("extra, message", [
    (["--workers", "0"], "--workers=0 must be at least 1"),
    (["--workers", "100000"], "more than the"),
    (["--rows-per-part", "0"], "--rows-per-part 0"),
    (["--cam-dir", "cams"], "--cam-dir: not used with --data"),
    (["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: nothing answers there"),
])
def test_bad_options_exit_2_and_create_nothing(batch_model, image_folder, tmp_path, extra, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(batch_model), "--data", str(image_folder), "--out", str(out), *extra])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_data_without_out_is_a_usage_error(batch_model, image_folder):
    result = runner.invoke(app, ["predict", str(batch_model), "--data", str(image_folder)])
    assert result.exit_code == 2 and "--data and --out go together" in result.stderr


def test_out_that_is_a_file_is_refused_untouched(batch_model, image_folder, tmp_path):
    out = tmp_path / "results.parquet"
    out.write_text("mine")
    result = runner.invoke(app, ["predict", str(batch_model), "--data", str(image_folder), "--out", str(out)])
    assert result.exit_code == 2 and "is not a folder" in result.stderr and out.read_text() == "mine"


def test_resuming_with_another_model_is_refused(test_models, local_results, image_folder, tmp_path):
    out = tmp_path / "results.parquet"
    shutil.copytree(local_results, out)
    before = sorted(p.name for p in out.iterdir())
    result = runner.invoke(app, ["predict", str(test_models.float32), "--data", str(image_folder), "--out", str(out)])
    assert result.exit_code == 2 and "holds rows of another model" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == before


def test_rerun_of_a_complete_job_adds_nothing(batch_model, local_results, image_folder, tmp_path):
    out = tmp_path / "results.parquet"
    shutil.copytree(local_results, out)
    result = runner.invoke(app, ["predict", str(batch_model), "--data", str(image_folder), "--out", str(out),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.stderr
    assert "21 rows (0 written now, 21 already there), 1 with an error" in result.stdout
    assert read_rows(out) == read_rows(local_results)


def test_eval_of_results_is_medtk_clinical_on_the_same_arrays(batch_model, local_results, image_folder):
    from medtk.clinical import split_metrics
    from medtk.clinical.calibration import brier_score, expected_calibration_error
    from medtk.clinical.finding import Finding
    from medtk.schema import Metrics

    result = runner.invoke(app, ["eval", str(local_results), "--json"])
    assert result.exit_code == 0, result.stderr
    assert "20 of 21 rows evaluated (1 with an error, 0 unlabelled)" in result.stderr
    got = Metrics.from_json(json.loads(result.stdout)).test

    classifier = Classifier(batch_model, num_threads=1)
    files = sorted(p for p in image_folder.rglob("*") if p.is_file() and p.name != "broken.png")
    probs = np.array([[classifier.predict(f).probabilities[c] for c in classifier.labels] for f in files])
    truth = np.array([classifier.labels.index(f.parent.name) for f in files])
    expected = split_metrics(truth, probs, classifier.labels, finding=Finding("pneumonia", 1, "test"),
                             rule="youden", threshold=THRESHOLD, intervals_seed=0)
    assert got.n == 20 and got.auc == expected.auc and got.operating_point == expected.operating_point
    assert got.ci == expected.ci and got.confusion_matrix == expected.confusion_matrix
    assert got.calibration.ece_after == expected_calibration_error(probs, truth)
    assert got.calibration.brier_after == brier_score(probs, truth)


def test_eval_summary_names_the_models_own_threshold(local_results):
    result = runner.invoke(app, ["eval", str(local_results)])
    assert result.exit_code == 0, result.stderr
    assert f"threshold {THRESHOLD:.4f}" in result.stdout and "95% CI" in result.stdout

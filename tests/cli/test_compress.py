"""`medtk compress` through the CLI: the quality gate's exit code 3, and one-line errors that write nothing."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medtk.cli import app


def _invoke(*args: str):
    return CliRunner().invoke(app, ["compress", *map(str, args)])


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("medtk: error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory) -> Path:
    """A run folder as `medtk train` lays it out, with an untrained small medtk model (no fitting needed
    for errors that must come before any long work)."""
    from medtk.config import load_config, save_config
    from medtk.data import load_dataset, save_split
    from medtk.train.model import ModelSpec, build_classifier

    run = tmp_path_factory.mktemp("cli_compress") / "run"
    run.mkdir()
    config = load_config(None, {"data": {"src": "synthetic:60"}, "model": {"arch": "mobilenetv2", "input_size": 32, "channels": 1}})
    save_config(config, run / "config.toml")
    save_split(load_dataset("synthetic:60", seed=0), run / "split.csv")
    build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=2)).save(run / "model.keras")
    return run


@pytest.fixture()
def run_copy(untrained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(untrained_run, copy)
    return copy


def _nothing_written(run: Path) -> bool:
    return not (run / "compress.json").exists() and not (run / "export").exists() and not list(run.glob(".export-*"))


def test_missing_run_folder(tmp_path: Path):
    result = _invoke(tmp_path / "nope", "--int8")
    assert result.exit_code == 1 and "no such run folder" in _error_line(result)


def test_run_folder_without_model(tmp_path: Path):
    result = _invoke(tmp_path, "--int8")
    assert result.exit_code == 1 and "model.keras missing" in _error_line(result)
    assert _nothing_written(tmp_path)


def test_bad_option_is_a_usage_error(run_copy: Path):
    result = _invoke(run_copy, "--int8", "--prune-sparsity", "1.5")
    assert result.exit_code == 2 and "--prune-sparsity" in _error_line(result)
    result = _invoke(run_copy, "--int8", "--calibration", "0")
    assert result.exit_code == 2 and "--calibration" in _error_line(result)
    result = _invoke(run_copy, "--int8", "--min-cam-correlation", "1.5")
    assert result.exit_code == 2 and "--min-cam-correlation" in _error_line(result)
    result = _invoke(run_copy, "--int8", "--max-cam-peak-shift", "-0.5")
    assert result.exit_code == 2 and "--max-cam-peak-shift" in _error_line(result)
    for ece in ("-0.01", "nan"):
        result = _invoke(run_copy, "--int8", "--max-ece-increase", ece)
        assert result.exit_code == 2 and "--max-ece-increase" in _error_line(result)
    result = _invoke(run_copy, "--int8", "--max-float-layers", "-1")
    assert result.exit_code == 2 and "--max-float-layers" in _error_line(result)
    result = _invoke(run_copy, "--int8", "--held-out", "0")
    assert result.exit_code == 2 and "--held-out" in _error_line(result)
    assert _nothing_written(run_copy)


def test_options_not_given_keep_the_library_defaults():
    from medtk.compress.options import CompressOptions

    defaults = CompressOptions()
    assert CompressOptions.given(min_cam_correlation=None, accuracy_control=None, distill=None) == defaults
    assert defaults.min_cam_correlation == 0.9 and defaults.accuracy_control and defaults.distill
    assert defaults.max_cam_peak_shift == 0.5 and defaults.max_ece_increase == 0.05
    assert CompressOptions.given(max_val_drop=0.002).max_val_drop == 0.002


def test_model_that_is_not_a_medtk_model(run_copy: Path):
    from medtk.train.tfenv import keras

    k = keras()
    inputs = k.Input((8,))
    k.Model(inputs, k.layers.Dense(2, name="logits")(inputs)).save(run_copy / "model.keras")
    result = _invoke(run_copy, "--int8")
    assert result.exit_code == 1 and "not a medtk model" in _error_line(result)
    assert _nothing_written(run_copy)


def test_unwritable_output_is_refused_before_any_work(run_copy: Path):
    (run_copy / "export").write_text("a file where the export folder should be")
    result = _invoke(run_copy, "--int8")
    assert result.exit_code == 1 and "not writable" in _error_line(result)
    assert not (run_copy / "compress.json").exists() and not list(run_copy.glob(".export-*"))


def test_empty_calibration_set(run_copy: Path):
    split = run_copy / "split.csv"
    with open(split, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] != "train"]
    with open(split, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = _invoke(run_copy, "--int8")
    assert result.exit_code == 1 and "train" in _error_line(result)
    assert _nothing_written(run_copy)

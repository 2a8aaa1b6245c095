"""`medtk explain` through the CLI on an untrained small run: PNGs, one-line errors, localization.json,
and the report section that shows it."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from medtk.cli import app


def _invoke(*args: object):
    return CliRunner().invoke(app, ["explain", *map(str, args)])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from medtk.config import load_config, save_config
    from medtk.data import describe, load_dataset, save_split
    from medtk.run import Run
    from medtk.train.model import ModelSpec, build_classifier

    folder = tmp_path_factory.mktemp("cli_explain") / "run"
    folder.mkdir()
    config = load_config(None, {"data": {"src": "synthetic:40"}, "model": {"arch": "mobilenetv2", "input_size": 32, "channels": 1}})
    save_config(config, folder / "config.toml")
    dataset = load_dataset("synthetic:40", seed=0)
    save_split(dataset, folder / "split.csv")
    Run(folder).write(Run(folder).data_file, describe(dataset))
    build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, output_stride=16)).save(folder / "model.keras")
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    from medtk.data import load_dataset

    folder = tmp_path_factory.mktemp("explain_images")
    split = load_dataset("synthetic:40").splits["test"]
    good = folder / "chest.png"
    cv2.imwrite(str(good), split.load(1))
    broken = folder / "broken.png"
    broken.write_bytes(b"not a png")
    return [good, broken]


def test_overlays_and_feature_grids_are_written_and_a_bad_image_is_skipped(run, images, tmp_path):
    result = _invoke(run, *images, "--method", "gradcam++", "--features", "block_16_project", "--out", tmp_path)
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.output and "medtk: error:" in result.output
    assert "gradcam++ on block_12_add (2x2)" in result.output
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert written == ["chest_features_block_16_project.png", "chest_gradcampp.png"]
    assert cv2.imread(str(tmp_path / "chest_gradcampp.png")).shape[2] == 3


def test_default_method_is_the_cam_into_the_run_folder(run, images):
    result = _invoke(run, images[0], "--class", "lesion")
    assert result.exit_code == 0, result.output
    assert "lesion" in result.output and (run / "explain" / "chest_cam.png").is_file()


def test_mistakes_are_one_line_usage_errors(run, images):
    result = _invoke(run, images[0], "--method", "gradcam", "--layer", "block_12_ad")
    assert result.exit_code == 2 and "close matches: block_12_add" in result.output
    result = _invoke(run, images[0], "--class", "tumour")
    assert result.exit_code == 2 and "--class 'tumour'" in result.output
    result = _invoke(run)
    assert result.exit_code == 2 and "--localization" in result.output


@pytest.mark.slow
def test_localization_writes_the_document_and_the_report_shows_it(run):
    from medtk.report.explain import explanations_section
    from medtk.report.inputs import read_run
    from medtk.run import Run

    before = explanations_section(read_run(run))
    assert "not run" in before
    result = _invoke(run, "--localization", "--limit", "6")
    assert result.exit_code == 0, result.output
    report = Run(run).localization()
    assert [s.name for s in report.scores] == ["cam", "gradcam@block_12_add", "gradcam++@block_12_add"]
    assert report.output_stride == 16 and report.scores[0].grid == (2, 2) and 0 < report.images <= 6
    assert all(0.0 <= s.pointing_game <= 1.0 and 0.0 < s.chance.pointing_game <= 1.0 for s in report.scores)
    assert all((run / path).is_file() for path in report.examples)
    html = explanations_section(read_run(run))
    assert "Grad-CAM++ on block_12_add" in html and html.count("<img") == len(report.examples)

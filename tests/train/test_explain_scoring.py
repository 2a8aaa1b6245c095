"""Localisation scores (pointing game, energy, IoU) and their chance rates on hand-made maps and masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medtk.errors import ModelError
from medtk.train.explain.scoring import energy, iou, score_maps, shown_map
from medtk.run import Run
from medtk.schema.localization import ChanceRates, LocalizationReport, LocalizationScore


def _mask(rows, cols, shape=(64, 64)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


QUADRANT = _mask(slice(0, 32), slice(0, 32))  # exactly the top-left cell of a 2 x 2 grid


def test_a_map_on_the_lesion_scores_full_marks_and_chance_is_the_grid_share():
    on = np.array([[1.0, 0.0], [0.0, 0.0]])
    result = score_maps([on], [QUADRANT], margin=0)
    assert (result.images, result.hits, result.grid) == (1, 1, (2, 2))
    assert result.scores.pointing_game == 1.0
    assert result.scores.energy > 0.7 and result.scores.iou > 0.8  # bilinear upsampling blurs the edge
    assert result.chance.pointing_game == 0.25  # one of four cells
    assert result.chance.energy < result.scores.energy and result.chance.iou < result.scores.iou


def test_a_map_elsewhere_misses_and_a_constant_map_scores_zero():
    away = np.array([[0.0, 0.0], [0.0, 1.0]])
    result = score_maps([away], [QUADRANT], margin=0)
    assert result.hits == 0 and result.scores.energy < 0.05 and result.scores.iou == 0.0
    flat = score_maps([np.full((2, 2), 3.0)], [QUADRANT])
    assert (flat.hits, flat.scores.energy, flat.scores.iou) == (0, 0.0, 0.0)


def test_images_without_a_lesion_are_not_scored():
    result = score_maps([np.eye(2), np.eye(2)], [QUADRANT, np.zeros((64, 64), bool)], margin=0)
    assert result.images == 1
    assert score_maps([], []).images == 0
    with pytest.raises(ValueError, match="2 maps for 1 masks"):
        score_maps([np.eye(2), np.eye(2)], [QUADRANT])


def test_energy_and_iou_on_the_shown_map():
    shown = np.zeros((4, 4), np.float32)
    shown[:2, :2] = 1.0
    shown[2:, 2:] = 0.4
    mask = _mask(slice(0, 2), slice(0, 2), (4, 4))
    assert energy(shown, mask) == pytest.approx(4 / (4 + 0.4 * 4))
    assert iou(shown, mask) == 1.0  # 0.4 is below the 0.5 threshold
    assert iou(shown, _mask(slice(0, 1), slice(0, 2), (4, 4))) == 0.5
    assert shown_map(np.array([[0.0, 2.0]]), (1, 2)).tolist() == [[0.0, 1.0]]


def test_a_finer_grid_has_a_lower_chance_of_pointing_at_a_small_lesion():
    mask = _mask(slice(20, 26), slice(20, 26))
    coarse = score_maps([np.random.default_rng(0).normal(size=(2, 2))], [mask])
    fine = score_maps([np.random.default_rng(0).normal(size=(8, 8))], [mask])
    assert fine.chance.pointing_game < coarse.chance.pointing_game


def _report() -> LocalizationReport:
    chance = ChanceRates(pointing_game=0.25, energy=0.02, iou=0.01)
    return LocalizationReport(
        source="synthetic:40", split="test", lesion_class="lesion", images=4, margin_pixels=2, iou_threshold=0.5,
        chance_permutations=16, input_size=64, output_stride=16,
        scores=(LocalizationScore(name="cam", kind="explanation", method="cam", grid=(4, 4), images=4,
                                  pointing_game=0.75, energy=0.3, iou=0.2, chance=chance, hits=3, layer="cam"),),
        examples=("explain/localization/lesion_00.png",),
    )


def test_document_round_trips_through_the_run(tmp_path):
    run = Run(tmp_path)
    assert run.localization() is None
    run.write(run.localization_file, _report())
    raw = json.loads(run.localization_file.read_text())
    assert raw["schema"] == "medtk-localization/1" and raw["scores"][0]["grid"] == [4, 4]
    assert {"pointing_game", "energy", "iou", "grid", "chance"} <= set(raw["scores"][0])
    assert run.localization() == _report()
    assert run.localization().score("cam").hits == 3


def test_newer_schema_and_nan_are_refused(tmp_path):
    run = Run(tmp_path)
    data = _report().to_json()
    data["schema"] = "medtk-localization/2"
    run.localization_file.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="newer than this medtk reads"):
        run.localization()
    bad = LocalizationReport(**{**_report().__dict__, "iou_threshold": float("nan")})
    with pytest.raises(ValueError, match="iou_threshold"):
        bad.to_json()


def test_cells_are_scored_where_their_receptive_fields_are_centred():
    """ResNet50 at stride 16 centres cell (i, j) on input pixel (16 i, 16 j): a lesion at input pixels
    26-30 is nearest cell 2's centre (32), though an even grid puts it in cell 1 ([16, 32))."""
    from medtk.runtime.geometry import CellGeometry

    geometry = CellGeometry(input_size=96, stride=(16.0, 16.0), origin=(0.0, 0.0))
    lesion = _mask(slice(26, 31), slice(26, 31), shape=(96, 96))
    cells = np.zeros((6, 6))
    cells[2, 2] = 1.0
    assert score_maps([cells], [lesion], margin=0, geometry=geometry).hits == 1
    assert score_maps([cells], [lesion], margin=0).hits == 0  # the even grid blames the map
    shown = shown_map(cells, (96, 96), geometry)
    assert np.unravel_index(int(shown.argmax()), shown.shape) == (32, 32)
    chance = score_maps([cells], [lesion], margin=0, geometry=geometry).chance.pointing_game
    assert chance == pytest.approx(1 / 36)  # the lesion is nearest one cell

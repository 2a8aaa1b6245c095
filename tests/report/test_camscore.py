"""The CAM localization score on hand-made grids and masks (the definition the report prints)."""

from __future__ import annotations

import numpy as np

from medtk.report.camscore import cell_bounds, lesion_region, overlapping_cells, peak_cell, score


def _mask(shape, rows, cols) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_cells_cover_the_image_without_gaps():
    bounds = [cell_bounds(i, 3, 64) for i in range(3)]
    assert bounds == [(0, 22), (21, 43), (42, 64)]  # floor/ceil: neighbours share a pixel row
    assert cell_bounds(1, 2, 64) == (32, 64)


def test_dilation_margin_is_a_square_of_pixels():
    mask = _mask((9, 9), 4, 4)
    assert lesion_region(mask, 0).sum() == 1
    assert lesion_region(mask, 1).sum() == 9
    assert lesion_region(mask, 2).sum() == 25


def test_hit_miss_and_chance():
    mask = _mask((64, 64), slice(4, 8), slice(4, 8))  # top-left cell of a 2 x 2 grid
    assert overlapping_cells(lesion_region(mask, 2), (2, 2)).tolist() == [[True, False], [False, False]]
    hit = np.array([[3.0, 1.0], [0.0, 1.0]])
    miss = np.array([[0.0, 1.0], [0.0, 3.0]])
    result = score("float32", [hit, miss], [mask, mask])
    assert (result.images, result.hits, result.hit_rate, result.chance, result.grid) == (2, 1, 0.5, 0.25, (2, 2))


def test_margin_reaches_into_the_neighbour_cell():
    mask = _mask((64, 64), slice(10, 14), slice(29, 32))  # ends one pixel left of the middle
    assert score("x", [np.array([[0.0, 5.0], [0.0, 0.0]])], [mask], margin=0).hits == 0
    assert score("x", [np.array([[0.0, 5.0], [0.0, 0.0]])], [mask], margin=2).hits == 1


def test_a_constant_map_has_no_peak():
    assert peak_cell(np.full((3, 3), 0.7)) is None
    assert peak_cell(np.array([[0.0, np.nan], [1.0, 0.0]])) is None
    mask = _mask((64, 64), slice(0, 64), slice(0, 64))
    assert score("x", [np.zeros((2, 2))], [mask]).hits == 0
    assert score("x", [], []).hit_rate is None

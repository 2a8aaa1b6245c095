"""CAM agreement on hand-made maps: correlation, same peak cell, peak within one cell, mean peak shift."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from medtk.compress.evaluate import Outputs, cam_agreement


def _outputs(maps: np.ndarray, predicted: list[int]) -> Outputs:
    probs = np.eye(2, dtype=np.float32)[predicted]
    return Outputs(probs=probs, cams=maps.astype(np.float32))


def test_identical_maps_agree_fully():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 4, 4, 2))
    result = asdict(cam_agreement(_outputs(maps, [0, 1, 0, 1, 1]), _outputs(maps, [0, 1, 0, 1, 1])))
    assert result == pytest.approx({"correlation": 1.0, "peak_match": 1.0, "peak_within_one": 1.0, "mean_peak_shift": 0.0})


def test_maps_are_compared_for_the_reference_class():
    reference = np.zeros((1, 3, 3, 2))
    reference[0, 0, 0, 1] = 1.0  # class 1 (predicted) peaks top-left
    candidate = np.zeros((1, 3, 3, 2))
    candidate[0, 0, 1, 1] = 1.0  # one cell to the right
    candidate[0, 2, 2, 0] = 5.0  # class 0's map must not matter
    result = asdict(cam_agreement(_outputs(reference, [1]), _outputs(candidate, [0])))
    assert result["peak_match"] == 0.0 and result["peak_within_one"] == 1.0
    assert result["correlation"] == pytest.approx(-1 / 8)
    assert result["mean_peak_shift"] == pytest.approx(1.0)


def test_a_map_moved_one_row_keeps_its_correlation_and_shows_its_shift():
    """What pruning + QAT did on the demo: the same blob, a row higher. r stays high, the peak moves."""
    rows, columns = np.mgrid[0:14, 0:14]
    blobs = [np.exp(-((rows - r) ** 2 + (columns - c) ** 2) / (2 * 3.0**2)) for r, c in ((5, 6), (9, 3), (7, 10))]
    reference = np.stack([np.stack([b, -b], axis=-1) for b in blobs])
    moved = np.roll(reference, -1, axis=1)  # every map one row up
    result = cam_agreement(_outputs(reference, [0, 0, 0]), _outputs(moved, [0, 0, 0]))
    assert result.correlation > 0.9 and result.peak_match == 0.0
    assert result.mean_peak_shift == pytest.approx(1.0)
    diagonal = np.roll(moved, 1, axis=2)
    assert cam_agreement(_outputs(reference, [0, 0, 0]), _outputs(diagonal, [0, 0, 0])).mean_peak_shift == \
        pytest.approx(np.sqrt(2))


def test_constant_maps_leave_correlation_undefined():
    maps = np.ones((2, 1, 1, 2))
    result = asdict(cam_agreement(_outputs(maps, [0, 1]), _outputs(maps, [0, 1])))
    assert result["correlation"] is None and result["peak_match"] == 1.0

"""CAM maps and overlays: size, range, the constant-map rule, and the blend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medtk.errors import RuntimeInputError
from medtk.runtime import overlay
from medtk.runtime.cam import class_map


def test_class_map_is_upsampled_and_normalised():
    raw = np.zeros((2, 2, 2), np.float32)
    raw[:, :, 1] = [[-3.0, 1.0], [0.0, 5.0]]
    cam = class_map(raw, 1, 90, 120)
    assert cam.shape == (90, 120) and cam.dtype == np.float32
    assert cam.min() == 0.0 and cam.max() == pytest.approx(1.0)
    assert cam[-1, -1] == pytest.approx(1.0) and cam[0, 0] == 0.0  # corners keep the cells' extremes
    expected = cv2.resize(raw[:, :, 1], (120, 90), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(cam, (expected + 3.0) / 8.0, atol=1e-6)


def test_constant_or_single_cell_map_is_zeros():
    assert not class_map(np.full((2, 2, 2), 4.0, np.float32), 0, 10, 12).any()
    assert not class_map(np.array([[[0.3, -1.0]]], np.float32), 1, 7, 5).any()
    assert not class_map(np.full((2, 2, 1), np.nan, np.float32), 0, 4, 4).any()


def test_class_map_does_not_touch_raw_cam():
    raw = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    before = raw.copy()
    class_map(raw, 0, 2, 2)
    np.testing.assert_array_equal(raw, before)


def test_overlay_blends_at_image_size():
    gray = np.full((30, 40), 100, np.uint8)
    cam = np.zeros((3, 4), np.float32)
    cam[0, 0] = 1.0
    blended = overlay(gray, cam)
    assert blended.shape == (30, 40, 3) and blended.dtype == np.uint8
    np.testing.assert_array_equal(overlay(gray, cam, alpha=0.0), np.dstack([gray] * 3))
    hot = overlay(gray, np.ones((30, 40), np.float32), alpha=1.0)
    top_colour = cv2.cvtColor(cv2.applyColorMap(np.uint8([[255]]), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)[0, 0]
    assert tuple(hot[0, 0]) == tuple(top_colour)


def test_overlay_accepts_paths_and_rgb(tmp_path):
    rgb = np.zeros((20, 10, 3), np.uint8)
    rgb[:, :, 0] = 200
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(overlay(path, np.zeros((20, 10), np.float32), alpha=0.0), rgb)


@pytest.mark.parametrize(
    ("cam", "alpha", "message"),
    [(np.zeros((2, 2, 2)), 0.4, "2-D map"), (np.zeros((2, 2)), 1.5, "alpha=1.5")],
)
def test_overlay_rejects_bad_arguments(cam, alpha, message):
    with pytest.raises(RuntimeInputError, match=message):
        overlay(np.zeros((4, 4), np.uint8), cam, alpha=alpha)

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


def test_upsampling_on_an_even_grid_geometry_is_a_plain_resize():
    from medtk.runtime.cam import upsample
    from medtk.runtime.geometry import CellGeometry

    cells = np.random.default_rng(3).random((6, 6)).astype(np.float32)
    even = CellGeometry(input_size=96, stride=(16.0, 16.0), origin=(7.5, 7.5))  # cell i centred at 16 i + 7.5
    expected = cv2.resize(cells, (64, 80), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(upsample(cells, 80, 64, even), expected, atol=1e-6)
    np.testing.assert_array_equal(upsample(cells, 80, 64), expected)


def test_cells_are_drawn_where_their_receptive_fields_are_centred():
    """ResNet50's cell i looks at input pixel 16 i (stride 16): its value belongs there, not half a cell on."""
    from medtk.runtime.cam import upsample
    from medtk.runtime.geometry import CellGeometry

    geometry = CellGeometry(input_size=96, stride=(16.0, 16.0), origin=(0.0, 0.0))
    cells = np.zeros((6, 6), np.float32)
    cells[2, 3] = 1.0
    shown = upsample(cells, 96, 96, geometry)
    assert np.unravel_index(int(shown.argmax()), shown.shape) == (32, 48)
    np.testing.assert_allclose(shown[::16, ::16], cells, atol=1e-6)
    assert shown[95, 95] == shown[80, 80]  # beyond the last centre the edge cell's value holds
    on_source = upsample(cells, 192, 192, geometry)  # an image twice the input: pixel 2 * 32 + 0.5
    assert np.unravel_index(int(on_source.argmax()), on_source.shape) in {(64, 96), (65, 97), (64, 97), (65, 96)}
    assert geometry.nearest_cells(96, 6, 0)[[0, 7, 9, 95]].tolist() == [0, 0, 1, 5]
    assert CellGeometry.from_dict(geometry.to_dict()) == geometry
    np.testing.assert_allclose(class_map(cells[:, :, None], 0, 96, 96, geometry), shown, atol=1e-6)

"""Fixtures for the runtime tests: real small `.tflite` models (see runtime_models.py) and images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.runtime.runtime_models import GRAY_LABELS, RGB_LABELS


@pytest.fixture(scope="session")
def gray_labels() -> tuple[str, ...]:
    return GRAY_LABELS


@pytest.fixture(scope="session")
def rgb_labels() -> tuple[str, ...]:
    return RGB_LABELS


@pytest.fixture(scope="session")
def float_model(test_models) -> Path:
    return test_models.float32


@pytest.fixture(scope="session")
def int8_model(test_models) -> Path:
    return test_models.int8


@pytest.fixture(scope="session")
def rgb_model(test_models) -> Path:
    return test_models.rgb


def _gradient_image(height: int = 90, width: int = 120, dtype=np.uint8) -> np.ndarray:
    """A non-square gray image with structure (a bright disc on a ramp), in the dtype's full range."""
    y, x = np.mgrid[0:height, 0:width]
    ramp = x / (width - 1) * 0.6
    disc = ((y - height * 0.4) ** 2 + (x - width * 0.7) ** 2 < (height * 0.25) ** 2) * 0.4
    values = (ramp + disc) / (ramp + disc).max()  # the full range, so 8 and 16 bit scale alike
    return np.round(values * np.iinfo(dtype).max).astype(dtype)


@pytest.fixture(scope="session")
def gray_image() -> np.ndarray:
    """90x120 uint8."""
    return _gradient_image()


@pytest.fixture(scope="session")
def gray_image16() -> np.ndarray:
    """90x120 uint16, the same picture."""
    return _gradient_image(dtype=np.uint16)


@pytest.fixture(scope="session")
def rgb_image(gray_image) -> np.ndarray:
    """90x120x3 uint8 with different content per channel."""
    return np.dstack([gray_image, gray_image[::-1], 255 - gray_image])


@pytest.fixture(scope="session")
def image_files(tmp_path_factory, gray_image, gray_image16, rgb_image) -> dict[str, Path]:
    """The same picture as PNG 8/16-bit, JPEG, TIFF 16-bit, and an RGB PNG (written as BGR by OpenCV)."""
    folder = tmp_path_factory.mktemp("images")
    files = {
        "png8": ("scan8.png", gray_image),
        "png16": ("scan16.png", gray_image16),
        "jpeg": ("scan.jpg", gray_image),
        "tiff16": ("scan16.tif", gray_image16),
        "rgb_png": ("colour.png", cv2.cvtColor(rgb_image, cv2.COLOR_RGB2BGR)),
    }
    paths = {}
    for key, (name, pixels) in files.items():
        paths[key] = folder / name
        assert cv2.imwrite(str(paths[key]), pixels)
    return paths

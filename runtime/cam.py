"""Class activation maps: the model's per-cell class logits -> a [0, 1] map at the image's size.

The model computes the maps in its graph (a 1x1 convolution with the classifier's weights over the
last feature map), so no gradients are needed here: pick the class's map, upsample it bilinearly to
the input image, and min-max normalise it. A constant map carries no location, so it becomes zeros
rather than an arbitrary all-ones "everything is important".

Maps are upsampled on the model's `CellGeometry` (geometry.py) when its metadata records one, else as
an even grid.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from medtk.errors import RuntimeInputError
from medtk.runtime.geometry import CellGeometry
from medtk.runtime.limits import DEFAULT_MAX_PIXELS
from medtk.runtime.inputs import load_image


def upsample(cells: np.ndarray, height: int, width: int, geometry: CellGeometry | None = None) -> np.ndarray:
    """An (h, w) map bilinearly onto `height` x `width` pixels: on `geometry`, or as an even grid (None)."""
    cells = np.ascontiguousarray(cells, dtype=np.float32)
    if geometry is None:
        if cells.shape == (height, width):
            return cells.copy()
        return cv2.resize(cells, (width, height), interpolation=cv2.INTER_LINEAR)
    rows = _interpolation(geometry, height, cells.shape[0], 0)
    columns = _interpolation(geometry, width, cells.shape[1], 1)
    return _product(_product(rows, cells), columns.T)


# The largest matrix product (multiply-adds) OpenBLAS computes on the calling thread (its
# GEMM_MULTITHREAD_THRESHOLD 4 x 65536). A larger one wakes its pool (a thread per CPU in numpy's wheels),
# whose threads then spin-wait after every image: a 7x7 map onto 512x512 in one product cost 8.9 ms of CPU
# for 0.1 ms of arithmetic; in row blocks under this size, 0.4 ms (benchmarks/RESULTS.md, "medtk serve").
SINGLE_THREADED_PRODUCT = 4 * 65536 - 1


def _product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left @ right in blocks of rows small enough for BLAS to stay on this thread (the same values)."""
    out = np.empty((left.shape[0], right.shape[1]), dtype=np.result_type(left, right))
    block = max(1, SINGLE_THREADED_PRODUCT // max(1, left.shape[1] * right.shape[1]))
    for start in range(0, left.shape[0], block):
        np.matmul(left[start:start + block], right, out=out[start:start + block])
    return out


@functools.lru_cache(maxsize=32)
def _interpolation(geometry: CellGeometry, pixels: int, cells: int, axis: int) -> np.ndarray:
    """(pixels, cells) linear-interpolation weights along `axis` (read-only; the same for every image of
    a size); positions beyond the first or last cell take that cell's value, as a resize replicates its
    border."""
    positions = np.clip(geometry.cell_coordinates(pixels, axis), 0.0, cells - 1.0)
    low = np.minimum(np.floor(positions).astype(np.int64), max(cells - 2, 0))
    high = np.minimum(low + 1, cells - 1)
    weight = positions - low
    matrix = np.zeros((positions.size, cells), dtype=np.float32)
    rows = np.arange(positions.size)
    np.add.at(matrix, (rows, low), 1.0 - weight)
    np.add.at(matrix, (rows, high), weight)
    matrix.flags.writeable = False
    return matrix


def class_map(raw_cam: np.ndarray, class_index: int, height: int, width: int,
              geometry: CellGeometry | None = None) -> np.ndarray:
    """The `class_index` map of `raw_cam` ([h, w, K] logits) as float32 in [0, 1], `height` x `width`."""
    cells = upsample(raw_cam[:, :, class_index], height, width, geometry)
    low, high = float(cells.min()), float(cells.max())
    if not high > low:  # constant, or NaN from a broken model
        return np.zeros((height, width), dtype=np.float32)
    cells -= low
    cells *= 1.0 / (high - low)
    return np.clip(cells, 0.0, 1.0, out=cells)


def overlay(
    image: np.ndarray | str | Path, cam: np.ndarray, alpha: float = 0.4, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """Blend a colour-mapped CAM over the image; returns uint8 RGB at the image's size.

    `image` is what was predicted on (a path or an array, decoded the way the classifier decodes it);
    `cam` is `Prediction.cam` (any size: it is resized to the image). Every step is one OpenCV pass,
    because `medtk serve` draws one per image (benchmarks/RESULTS.md, "Notes moved from code").
    """
    if not 0.0 <= alpha <= 1.0:
        raise RuntimeInputError(f"overlay alpha={alpha!r} must be between 0 and 1")
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise RuntimeInputError(f"overlay cam must be a 2-D map, got shape {cam.shape}")
    pixels = load_image(image, DEFAULT_MAX_PIXELS)
    rgb = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB) if pixels.ndim == 2 else pixels
    height, width = rgb.shape[:2]
    if cam.shape != (height, width):
        cam = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    _, cam = cv2.threshold(cam, 0.0, 0.0, cv2.THRESH_TOZERO)  # below 0 (and NaN) -> 0
    heat = cv2.convertScaleAbs(cam, alpha=255.0)  # x255, rounded, saturated at 255: above 1 -> 255
    return cv2.addWeighted(rgb, 1.0 - alpha, cv2.applyColorMap(heat, _rgb_colormap(colormap)), alpha, 0.0)


@functools.lru_cache(maxsize=8)
def _rgb_colormap(colormap: int) -> np.ndarray:
    """OpenCV's `colormap` as a 256-entry RGB lookup table (applyColorMap itself gives BGR)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return cv2.cvtColor(cv2.applyColorMap(ramp, colormap), cv2.COLOR_BGR2RGB)

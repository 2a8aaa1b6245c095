"""Pixels -> uint8 by a function of each value alone, without a float64 copy of the image.

Every mapping to 8 bits (intensity.py; dicom.py's modality LUT, VOI and stored range) depends on each
stored value alone. For 8- and 16-bit integers it is computed once per value with the arithmetic that
defines it, and applied by table lookup: the same bytes as computing it pixel by pixel, for 1 byte per
pixel of output instead of several float64 temporaries (8 bytes per pixel each). The table is computed
only over the span of bit patterns the image holds (a 12-bit CT in a 16-bit word: 4,096 values, not
65,536; entries outside the span are never looked up), and used when the image has more pixels than that
span has values. 8-bit images are looked up by OpenCV's LUT (SIMD), 16-bit ones by numpy's `take`, which
turns indices into 8-byte integers, so it runs in blocks. Other types (floats, 32-bit integers) go through
the function a block of rows at a time. (Measured in benchmarks/RESULTS.md, "Decode memory" and "Decode
CPU time".)
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

__all__ = ["by_rows", "domain", "per_value", "seen_values", "tabulated"]

BLOCK_PIXELS = 1 << 18  # per block: its temporaries (8-byte indices) stay at 2 MB whatever the image's size

Transform = Callable[[np.ndarray], np.ndarray]


def tabulated(pixels: np.ndarray) -> bool:
    """Whether `per_value` looks `pixels` up in a table: integers of at most 16 bits, more pixels than the
    span of their bit patterns has values."""
    return _table_span(pixels) is not None


def _table_span(pixels: np.ndarray) -> tuple[int, int] | None:
    """The lowest and highest bit pattern in `pixels` when `tabulated`, else None."""
    if pixels.dtype.kind not in "iu" or pixels.dtype.itemsize > 2 or pixels.size < 2:
        return None
    index = pixels.view(_unsigned(pixels.dtype))
    low, high = int(index.min()), int(index.max())
    return (low, high) if pixels.size >= high - low + 1 else None


def domain(dtype: np.dtype) -> np.ndarray:
    """Every value of an integer `dtype` of at most 16 bits, at the index of its bit pattern."""
    return np.arange(1 << (8 * dtype.itemsize), dtype=_unsigned(dtype)).view(dtype)


def per_value(pixels: np.ndarray, transform: Transform) -> np.ndarray:
    """`transform(pixels)` as uint8, for a `transform` that maps each value on its own (elementwise)."""
    span = _table_span(pixels)
    if span is None:
        return by_rows(pixels, transform)
    values = domain(pixels.dtype)
    low, high = span
    if high - low + 1 == len(values):
        return from_table(pixels, np.asarray(transform(values), dtype=np.uint8))
    table = np.zeros(len(values), dtype=np.uint8)  # entries outside the span are never looked up
    table[low:high + 1] = transform(values[low:high + 1])
    return from_table(pixels, table)


def from_table(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`table[pixels]`, `table` indexed by the pixels' bit patterns (`domain`'s order)."""
    index = pixels.view(_unsigned(pixels.dtype))
    if index.dtype == np.uint8 and index.ndim:  # OpenCV's LUT takes 2-D arrays of up to 512 channels
        rows = np.ascontiguousarray(index).reshape(index.shape[0], -1)
        return cv2.LUT(rows, table).reshape(index.shape)
    return by_rows(index, lambda block: table.take(block, mode="clip"))  # indices are in range by construction


def seen_values(pixels: np.ndarray) -> np.ndarray:
    """A mask over `domain(pixels.dtype)`: True for each value that occurs in `pixels`."""
    seen = np.zeros(1 << (8 * pixels.dtype.itemsize), dtype=bool)
    index = pixels.view(_unsigned(pixels.dtype))
    for start, stop in _blocks(index):
        seen[index[start:stop]] = True
    return seen


def by_rows(pixels: np.ndarray, transform: Transform) -> np.ndarray:
    """`transform` applied to a block of rows at a time, into one uint8 array."""
    if pixels.ndim == 0 or pixels.size == 0:
        return np.asarray(transform(pixels), dtype=np.uint8)
    out = np.empty(pixels.shape, dtype=np.uint8)
    for start, stop in _blocks(pixels):
        out[start:stop] = transform(pixels[start:stop])
    return out


def _blocks(pixels: np.ndarray):
    step = max(1, BLOCK_PIXELS // max(1, pixels[0].size))
    for start in range(0, len(pixels), step):
        yield start, min(start + step, len(pixels))


def _unsigned(dtype: np.dtype) -> np.dtype:
    """The unsigned type of `dtype`'s size: a view in it indexes by bit pattern (any byte order, as `domain`)."""
    return np.dtype(f"u{dtype.itemsize}")

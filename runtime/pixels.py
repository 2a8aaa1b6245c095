"""A decoded image (`Decoded`) and the checks every decoder applies to pixels before the model sees them.

Shared by the raster and array paths (imaging.py) and the DICOM path (dicom.py): the shapes medtk reads
(gray HxW or RGB HxWx3; an alpha channel dropped) within the pixel limit (limits.py), numeric pixel
types, and the mapping to 8 bits (intensity.py) with the source named in its error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.headers import ImageKind
from medtk.runtime.intensity import to_uint8
from medtk.runtime.limits import check_limit

__all__ = ["Decoded", "check_shape", "map_pixels"]


@dataclass(frozen=True)
class Decoded:
    """An image as the model's preprocessing takes it: uint8 HxW or HxWx3, and what the source was."""

    pixels: np.ndarray
    kind: ImageKind


def check_shape(pixels: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    """`pixels` as gray HxW or RGB HxWx3 (alpha dropped), within `max_pixels`, of a numeric type."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ImageDecodeError(f"{name}: expected a gray (HxW) or RGB (HxWx3) image, got shape {pixels.shape}")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageDecodeError(f"{name}: empty image of shape {pixels.shape}")
    check_limit(pixels.shape[1], pixels.shape[0], 1, name, max_pixels)
    if pixels.dtype == np.bool_ or pixels.dtype.kind not in "uif":
        raise ImageDecodeError(f"{name}: unsupported pixel type {pixels.dtype}")
    return pixels


def map_pixels(pixels: np.ndarray, name: str, mapping: str, bit_depth: int | None) -> np.ndarray:
    """`to_uint8` with the source's name in front of its error."""
    try:
        return to_uint8(pixels, mapping, bit_depth)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"{name}: {error}") from None

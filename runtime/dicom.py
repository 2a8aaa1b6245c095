"""DICOM pixels -> 8 bits through pydicom and the file's own transforms (DICOM PS3.3 C.11).

Modality LUT or rescale slope/intercept, then the VOI LUT Sequence or else the first VOI window when
the file has a usable one, else the stored range (BitsStored, signed when PixelRepresentation is 1)
through the modality LUT: the same mapping for every image of the modality, never per image.
MONOCHROME1 is inverted. PALETTE COLOR goes through its palette (pydicom's `apply_color_lut`) to RGB;
colour goes through the intensity mapping with BitsStored (or the palette's entry size) as its depth.

That chain is a function of each stored value alone: for 8- and 16-bit pixels it is computed once per
stored value with pydicom's functions and applied as a table (lookup.py), so a 16-bit image costs its
decoded pixels and one byte per pixel of output, not float64 copies. The header was checked before
(`check_dicom`); the elements read here are checked from their raw bytes (dicom_fields.py), and
library errors are reported by their type only: their text can quote header values.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.dicom_fields import code, is_valid, lut_item_valid, whole_number
from medtk.runtime.dicom_header import check_dicom
from medtk.runtime.intensity import FULL_RANGE, MINMAX, scale_minmax
from medtk.runtime.limits import DEFAULT_MAX_PIXELS
from medtk.runtime.lookup import domain, per_value, seen_values, tabulated
from medtk.runtime.pixels import Decoded, check_shape, map_pixels

__all__ = ["dicom_pixels", "read_dicom_dataset"]


def read_dicom_dataset(dataset: Any, name: str, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE) -> Decoded:
    """`read_image` for a DICOM data set already read whole (by a caller that also needs its header,
    such as `medtk serve`): the same header checks, pixel limit and intensity mapping, `name` in errors."""
    header = check_dicom(dataset, name, max_pixels)
    return Decoded(dicom_pixels(dataset, name, mapping), header.kind)


def dicom_pixels(dataset: Any, name: str, mapping: str, release: bool = False) -> np.ndarray:
    """The uint8 pixels of a data set whose header `check_dicom` accepted. `release`: drop its Pixel Data
    once decoded (a data set read here, not the caller's), so the encoded and decoded copies overlap less."""
    from pydicom.pixels import pixel_array

    if "PixelData" not in dataset:
        raise ImageDecodeError(f"{name}: DICOM file has no pixel data")
    try:
        pixels = pixel_array(dataset)  # not `dataset.pixel_array`, which keeps a copy in the data set
    except Exception as error:
        raise ImageDecodeError(
            f"{name}: cannot decode DICOM pixel data ({type(error).__name__}: corrupt, or encoded in a way its "
            f"decoder does not read)"
        ) from None
    if release:
        del dataset.PixelData
    photometric = code(dataset, "PhotometricInterpretation", name)
    bits = whole_number(dataset, "BitsStored", name)
    if photometric == "PALETTE COLOR":
        pixels, bits = _palette(pixels, dataset, name), None
    if pixels.ndim == 3:
        pixels = check_shape(pixels, name, pixels.size)
        return map_pixels(pixels, name, mapping, bits if pixels.dtype.kind == "u" else None)
    try:
        image = _gray(pixels, dataset, name, mapping, bits)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"{name}: {error}") from None
    except Exception as error:  # an inconsistent LUT or rescale in a damaged header
        raise ImageDecodeError(f"{name}: cannot apply the DICOM intensity transforms ({type(error).__name__})") from None
    return check_shape(image, name, image.size)


def _gray(pixels: np.ndarray, dataset: Any, name: str, mapping: str, bits: int | None) -> np.ndarray:
    """Stored values -> 0..255 by the module docstring's chain, per value (a table for 8/16-bit pixels)."""
    from pydicom.pixels import apply_modality_lut

    voi = _voi_source(dataset)
    inverted = code(dataset, "PhotometricInterpretation", name) == "MONOCHROME1"

    @cache
    def extremes() -> tuple[float, float]:  # schema-2 models: the image's own range after the modality LUT
        if tabulated(pixels):
            values = apply_modality_lut(domain(pixels.dtype), dataset)[seen_values(pixels)]
        else:
            values = apply_modality_lut(pixels, dataset)
        return float(values.min()), float(values.max())

    def to_8bit(stored: np.ndarray) -> np.ndarray:
        values = apply_modality_lut(stored, dataset)
        image = _apply_voi(values, dataset, voi)
        if image is None and mapping == MINMAX:
            image = scale_minmax(values, *extremes())
        elif image is None:  # no (usable) VOI LUT or window: the stored range through the modality LUT
            image = _stored_range(values, dataset, bits)
        return 255 - image if inverted else image

    return per_value(pixels, to_8bit)


def _stored_range(values: np.ndarray, dataset: Any, bits: int | None) -> np.ndarray:
    """Map the stored value range (BitsStored, signed when PixelRepresentation is 1) through the modality
    LUT onto 0..255: the same mapping for every image of the modality, never per image."""
    from pydicom.pixels import apply_modality_lut

    if bits is None or not 1 <= bits <= 32:
        raise ImageDecodeError(f"BitsStored {bits} is not usable to map intensities")
    signed = int(dataset.get("PixelRepresentation", 0) or 0) == 1
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if "ModalityLUTSequence" in dataset and bits <= 16:
        ends = apply_modality_lut(np.arange(low, high + 1, dtype=np.int64), dataset)
    else:
        ends = apply_modality_lut(np.array([low, high], dtype=np.int64), dataset)
    first, last = float(np.min(ends)), float(np.max(ends))
    if not last > first:
        raise ImageDecodeError(f"stored range [{low}, {high}] maps to a single value; cannot map intensities")
    scaled = (values.astype(np.float64) - first) * (255.0 / (last - first))
    return np.round(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def _voi_source(dataset: Any) -> str | None:
    """What `_apply_voi` uses, as `pydicom.pixels.apply_voi_lut` decides: "lut" (a complete VOI LUT Sequence
    item) first, else "window"; None without one. A malformed one is left out unread, as pydicom's refusal
    of it left it out before: reading it, pydicom would log the value."""
    items = dataset.get("VOILUTSequence") if is_valid(dataset, "VOILUTSequence") else None
    if items and all(keyword in items[0] for keyword in ("LUTDescriptor", "LUTData")):
        return "lut" if lut_item_valid(items[0]) else None
    window = ("WindowCenter", "WindowWidth")
    if all(keyword in dataset for keyword in window) and all(is_valid(dataset, k) for k in (*window, "VOILUTFunction")):
        return "window"
    return None


def _apply_voi(values: np.ndarray, dataset: Any, source: str | None) -> np.ndarray | None:
    """The VOI transform (DICOM PS3.3 C.11.2) by pydicom, its output range mapped onto 0..255.

    The output range is the LUT's entries, or the window's limits, so values outside the window
    saturate. None when the file has neither, or an unusable one (window width < 1).
    """
    from pydicom.pixels import apply_voi, apply_windowing

    try:
        if source == "lut":
            descriptor = dataset.VOILUTSequence[0].LUTDescriptor
            count, first = descriptor[0] or 2**16, descriptor[1]
            inputs = np.clip(np.rint(values), first, first + count - 1).astype(np.int64)  # the LUT clamps
            shown = apply_voi(inputs, dataset).astype(np.float64)
            entries = apply_voi(np.arange(first, first + count, dtype=np.int64), dataset)
            low, high = float(entries.min()), float(entries.max())
        elif source == "window":
            shown = apply_windowing(values, dataset)
            low, high = (float(end) for end in apply_windowing(np.array([-np.inf, np.inf]), dataset))
        else:
            return None
    except (ValueError, NotImplementedError):  # window width < 1, unsupported LUT entry size or function
        return None
    if not high > low:
        return None
    return np.round(np.clip((shown - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _palette(pixels: np.ndarray, dataset: Any, name: str) -> np.ndarray:
    """PALETTE COLOR indices -> RGB through the file's palette (8- or 16-bit entries, as the descriptor says)."""
    from pydicom.pixels import apply_color_lut

    try:
        return apply_color_lut(pixels, dataset)
    except Exception as error:
        raise ImageDecodeError(f"{name}: cannot apply the PALETTE COLOR lookup table ({type(error).__name__})") from None

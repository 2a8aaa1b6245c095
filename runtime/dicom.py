"""DICOM pixels -> 8 bits through pydicom and the file's own transforms (DICOM PS3.3 C.11).

Modality LUT or rescale slope/intercept, then the VOI LUT Sequence or else the first VOI window when
the file has a usable one, else the stored range (BitsStored, signed when PixelRepresentation is 1)
through the modality LUT: the same mapping for every image of the modality, never per image.
MONOCHROME1 is inverted; a multi-frame volume gives its middle frame; colour goes through the
intensity mapping with BitsStored as its depth. Only pixel-describing header fields are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.headers import dicom_header
from medtk.runtime.intensity import FULL_RANGE, MINMAX, to_uint8
from medtk.runtime.messages import first_line
from medtk.runtime.pixels import DEFAULT_MAX_PIXELS, Decoded, check_limit, check_shape, map_pixels

__all__ = ["read_dicom", "read_dicom_dataset"]


def read_dicom_dataset(dataset, name: str, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE) -> Decoded:
    """`read_image` for a DICOM data set already read whole (by a caller that also needs its header,
    such as `medtk serve`): the same header checks, pixel limit and intensity mapping, `name` in errors."""
    header = dicom_header(dataset, name)
    check_limit(header.width, header.height, header.frames, name, max_pixels)
    return Decoded(_dicom_pixels(dataset, name, mapping), header.kind)


def read_dicom(path: Path, mapping: str) -> np.ndarray:
    """The uint8 pixels of a DICOM file whose header `imaging.read_image` has already checked."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types for a bad file
        raise ImageDecodeError(f"{path}: not a readable DICOM file ({type(error).__name__})") from None
    return _dicom_pixels(dataset, str(path), mapping)


def _dicom_pixels(dataset, path: str, mapping: str) -> np.ndarray:
    """Pixels only: no header field other than the pixel-describing ones is read, logged or kept."""
    from pydicom.pixels import apply_modality_lut

    if "PixelData" not in dataset:
        raise ImageDecodeError(f"{path}: DICOM file has no pixel data")
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        raise ImageDecodeError(f"{path}: cannot decode DICOM pixel data ({first_line(error)})") from None
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if pixels.ndim == (4 if samples != 1 else 3):
        pixels = pixels[pixels.shape[0] // 2]  # a multi-frame volume: its middle frame
    bits = int(dataset.get("BitsStored", 0) or 0) or None
    if samples != 1:
        pixels = check_shape(pixels, str(path), pixels.size)
        return map_pixels(pixels, str(path), mapping, bits if pixels.dtype.kind == "u" else None)
    try:
        values = apply_modality_lut(pixels, dataset)
        image = _apply_voi(values, dataset)
        if image is None and mapping == MINMAX:
            image = to_uint8(values.astype(np.float64), MINMAX)
        elif image is None:  # no (usable) VOI LUT or window: the stored range through the modality LUT
            image = _stored_range(values, dataset, bits)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"{path}: {error}") from None
    except Exception as error:  # an inconsistent LUT or rescale in a damaged header
        raise ImageDecodeError(f"{path}: cannot apply the DICOM intensity transforms ({first_line(error)})") from None
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image
    return check_shape(image, str(path), image.size)


def _stored_range(values: np.ndarray, dataset, bits: int | None) -> np.ndarray:
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


def _apply_voi(values: np.ndarray, dataset) -> np.ndarray | None:
    """The VOI transform (DICOM PS3.3 C.11.2) by pydicom, its output range mapped onto 0..255.

    As `pydicom.pixels.apply_voi_lut` decides: a VOI LUT Sequence first, else the first window (any
    VOI LUT Function). The output range is the LUT's entries, or the window's limits, so values
    outside the window saturate. None when the file has neither, or an unusable one (window width < 1).
    """
    from pydicom.pixels import apply_voi, apply_windowing

    lut = _voi_lut(dataset)
    try:
        if lut is not None:
            count, first = lut.LUTDescriptor[0] or 2**16, lut.LUTDescriptor[1]
            inputs = np.clip(np.rint(values), first, first + count - 1).astype(np.int64)  # the LUT clamps
            shown = apply_voi(inputs, dataset).astype(np.float64)
            entries = apply_voi(np.arange(first, first + count, dtype=np.int64), dataset)
            low, high = float(entries.min()), float(entries.max())
        elif "WindowCenter" in dataset and "WindowWidth" in dataset:
            shown = apply_windowing(values, dataset)
            low, high = (float(end) for end in apply_windowing(np.array([-np.inf, np.inf]), dataset))
        else:
            return None
    except (ValueError, NotImplementedError):  # window width < 1, unsupported LUT entry size
        return None
    if not high > low:
        return None
    return np.round(np.clip((shown - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _voi_lut(dataset):
    """The first VOI LUT Sequence item when it is complete, else None."""
    items = dataset.get("VOILUTSequence")
    if not items or "LUTDescriptor" not in items[0] or "LUTData" not in items[0]:
        return None
    return items[0]

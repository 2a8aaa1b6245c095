"""Decode image files and turn pixels into model input: the one implementation training and the runtime share.

A model is only as right as its preprocessing: the device must see exactly the pixels training saw.
Both `medtk.data` (training) and `medtk.runtime.Classifier` (device) call `read_image`/`decode_image`
and `prepare_input`, so the rule below exists once:

0. header first (headers.py): the dimensions are read from the file's header (PNG IHDR, JPEG SOF,
   TIFF IFD0, BMP info header; DICOM Rows/Columns/NumberOfFrames/SamplesPerPixel via pydicom without
   pixel data) and an image over the pixel limit (pixels.py) is refused before anything is decoded or
   allocated. Other formats are refused.
1. decode: PNG/JPEG/BMP/TIFF through OpenCV (8 or 16 bit, grayscale or colour, returned as RGB);
   DICOM through pydicom and its own LUT functions (dicom.py: modality LUT or rescale slope/intercept,
   then the VOI LUT Sequence or else the first VOI window when present, MONOCHROME1 inverted).
2. to 8 bit by the model's intensity mapping (intensity.py): `full-range/1` is deterministic - uint8
   kept, 16-bit files over their full range (x257 copies map back exactly), DICOM through its window
   or else its stored range (BitsStored), floats in [0, 1] x255 or in [0, 255] kept, anything else
   refused. Models exported before schema 3 keep their training's per-image min-max.
3. channels: RGB -> gray by luminance (ITU-R 601) or gray -> RGB by copying.
4. resize to SxS (no aspect-ratio padding, as MedMNIST does): INTER_AREA when shrinking (anti-aliased),
   INTER_LINEAR when enlarging.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.dicom import read_dicom, read_dicom_dataset
from medtk.runtime.headers import COLOUR, DICOM_SUFFIXES, GRAY, IMAGE_SUFFIXES, ImageHeader, ImageKind, is_dicom, probe
from medtk.runtime.intensity import FULL_RANGE, array_kind, to_uint8
from medtk.runtime.pixels import DEFAULT_MAX_PIXELS, Decoded, check_limit, check_shape, map_pixels

# Names defined in headers.py, pixels.py, dicom.py and intensity.py are re-exported: this module is
# where training, the CLI and the runtime's callers import the shared decoding from.
__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "DEFAULT_MAX_PIXELS",
    "INTERPOLATION_RULE",
    "PREPROCESSING_NOTE",
    "Decoded",
    "ImageHeader",
    "decode_image",
    "is_dicom",
    "prepare_input",
    "probe",
    "read_dicom_dataset",
    "read_image",
    "to_uint8",
]

INTERPOLATION_RULE = "area-down/linear-up"
PREPROCESSING_NOTE = (
    "decode (DICOM: modality LUT/rescale, VOI LUT or window, MONOCHROME1 inverted); to 8 bit by the "
    "intensity mapping 'full-range/1': uint8 kept, 16-bit over its full range (v*255/65535, so x257 "
    "copies map back exactly), DICOM by its window or else its stored range (BitsStored), floats in "
    "[0,1] x255 or in [0,255] kept, other ranges refused; RGB->gray by luminance or gray->RGB by copy; "
    "resize to SxS without padding (INTER_AREA shrinking, INTER_LINEAR enlarging); all normalization "
    "in the graph"
)


def decode_image(
    source: str | Path | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE
) -> np.ndarray:
    """Return the image as uint8, HxW (gray) or HxWx3 (RGB); raise `ImageDecodeError` naming the file."""
    return read_image(source, max_pixels, mapping).pixels


def read_image(
    source: str | Path | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE
) -> Decoded:
    """Decode a file or take an array, refuse it over `max_pixels` (before decoding), map it to uint8."""
    if isinstance(source, np.ndarray):
        pixels = check_shape(source, "array", max_pixels)
        return Decoded(map_pixels(pixels, "array", mapping, None), array_kind(pixels))
    path = Path(source)
    if path.is_dir():
        raise ImageDecodeError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise ImageDecodeError(f"{path}: no such file")
    header = probe(path)
    check_limit(header.width, header.height, header.frames, str(path), max_pixels)
    if header.format == "dicom":
        return Decoded(read_dicom(path, mapping), header.kind)
    pixels = check_shape(_read_raster(path), str(path), max_pixels)
    bit_depth = 16 if pixels.dtype == np.uint16 else None
    kind = ImageKind(
        bit_depth=None if pixels.dtype.kind == "f" else (bit_depth or 8),
        photometric=COLOUR if pixels.ndim == 3 else GRAY,
    )
    return Decoded(map_pixels(pixels, str(path), mapping, bit_depth), kind)


def prepare_input(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Decoded image -> uint8 array of shape (size, size, channels), raw 0..255 as the model expects."""
    pixels = to_uint8(image)
    pixels = _match_channels(pixels, channels)
    height, width = pixels.shape[:2]
    if (height, width) != (size, size):
        shrinking = height * width > size * size
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        pixels = cv2.resize(pixels, (size, size), interpolation=interpolation)
    return pixels.reshape(size, size, channels)


def _match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY) if pixels.ndim == 3 else pixels
    if channels == 3:
        return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels
    raise ImageDecodeError(f"unsupported channel count {channels}; expected 1 or 3")


def _read_raster(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None:
        raise ImageDecodeError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return pixels

"""Decode image files and turn pixels into model input: the one implementation training and the runtime share.

A model is only as right as its preprocessing: the device must see exactly the pixels training saw.
Both `medtk.data` (training) and `medtk.runtime.Classifier` (device) call `read_image`/`decode_image`
and `prepare_input`, so the rule below exists once:

0. header first (headers.py for rasters, dicom_header.py for DICOM; limits.py): the dimensions and
   frames are read from the header (PNG IHDR and acTL, JPEG SOF, TIFF IFDs, BMP info header; DICOM
   Image Pixel elements, a deflated data set inflated within a bound: dicom_file.py) and an image over
   the pixel limit, with more than one frame, or in a layout or encoding the runtime does not decode is
   refused before anything is decoded or allocated. Other formats are refused. Paths and bytes alike.
1. decode: PNG/JPEG/BMP/TIFF through OpenCV (8 or 16 bit, grayscale or colour, returned as RGB);
   DICOM through pydicom and its own LUT functions (dicom.py: modality LUT or rescale slope/intercept,
   then the VOI LUT Sequence or else the first VOI window when present, MONOCHROME1 inverted,
   PALETTE COLOR through its palette).
2. to 8 bit by the model's intensity mapping (intensity.py): `full-range/1` is deterministic - uint8
   kept, 16-bit files over their full range (x257 copies map back exactly), DICOM through its window
   or else its stored range (BitsStored), floats in [0, 1] x255 or in [0, 255] kept, anything else
   refused. Models exported before schema 3 keep their training's per-image min-max. Each mapping is
   per value: a table for 8/16-bit pixels (lookup.py), never a float64 copy of the image.
3. channels: RGB -> gray by luminance (ITU-R 601) or gray -> RGB by copying.
4. resize to SxS (no aspect-ratio padding, as MedMNIST does): INTER_AREA when shrinking (anti-aliased),
   INTER_LINEAR_EXACT when enlarging. Both give the same bytes on x86-64 and aarch64; plain INTER_LINEAR
   does not (its SIMD paths round differently: ~20% of an upscaled image's pixels one level apart,
   enough to move a float32 model's probability by 0.01; benchmarks/RESULTS.md, "The runtime on
   aarch64"), and the device must see the pixels the model was validated on. A model records the rule
   its inputs were made with (`ModelInput.interpolation`) and is fed by that rule: models exported
   before `area-down/linear-exact-up` keep INTER_LINEAR (`RESIZE_RULES`), as they were validated.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.dicom import dicom_pixels, read_dicom_dataset
from medtk.runtime.dicom_file import read_dicom
from medtk.runtime.headers import COLOUR, DICOM_SUFFIXES, GRAY, IMAGE_SUFFIXES, ImageHeader, ImageKind, is_dicom
from medtk.runtime.intensity import FULL_RANGE, array_kind, to_uint8
from medtk.runtime.limits import DEFAULT_MAX_PIXELS, check_max_pixels
from medtk.runtime.pixels import Decoded, check_shape, map_pixels
from medtk.runtime.probe import existing, is_dicom_source, probe, read_header, source_name

# Names defined in headers.py, limits.py, pixels.py, probe.py, dicom.py and intensity.py are re-exported:
# this module is where training, the CLI and the runtime's callers import the shared decoding from.
__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "DEFAULT_MAX_PIXELS",
    "INTERPOLATION_RULE",
    "LEGACY_INTERPOLATION_RULE",
    "RESIZE_RULES",
    "PREPROCESSING_NOTE",
    "Decoded",
    "ImageHeader",
    "decode_image",
    "is_dicom",
    "prepare_input",
    "probe",
    "read_dicom_dataset",
    "read_header",
    "read_image",
    "to_uint8",
]

Source = str | Path | bytes | np.ndarray

INTERPOLATION_RULE = "area-down/linear-exact-up"
LEGACY_INTERPOLATION_RULE = "area-down/linear-up"  # models exported before the exact rule
RESIZE_RULES = {  # rule -> the OpenCV interpolation that enlarges (shrinking is INTER_AREA under both)
    INTERPOLATION_RULE: cv2.INTER_LINEAR_EXACT,  # bit-exact on every CPU
    LEGACY_INTERPOLATION_RULE: cv2.INTER_LINEAR,  # rounds differently on x86-64 and ARM
}
PREPROCESSING_NOTE = (
    "decode (DICOM: modality LUT/rescale, VOI LUT or window, MONOCHROME1 inverted); to 8 bit by the "
    "intensity mapping 'full-range/1': uint8 kept, 16-bit over its full range (v*255/65535, so x257 "
    "copies map back exactly), DICOM by its window or else its stored range (BitsStored), floats in "
    "[0,1] x255 or in [0,255] kept, other ranges refused; RGB->gray by luminance or gray->RGB by copy; "
    "resize to SxS without padding (INTER_AREA shrinking, INTER_LINEAR_EXACT enlarging); all normalization "
    "in the graph"
)


def decode_image(source: Source, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE,
                 name: str | None = None) -> np.ndarray:
    """Return the image as uint8, HxW (gray) or HxWx3 (RGB); raise `ImageDecodeError` naming the file."""
    return read_image(source, max_pixels, mapping, name).pixels


def read_image(source: Source, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE,
               name: str | None = None) -> Decoded:
    """Decode a file - a path, or its bytes (`name` in messages, default "the image") - or take an array;
    refuse what its header rules out (limits.py: over `max_pixels`, several frames) before decoding; map
    it to uint8.

    Memory (measured, benchmarks/RESULTS.md "Decode memory"): one image peaks at about its encoded size
    plus 2 bytes per pixel for 8-bit gray, 2-4 for 16-bit gray, 6 for 8-bit RGB and 12 for 16-bit RGB:
    at the default `max_pixels` (100 M) a 16-bit gray image takes at most ~0.4 GB besides its file.
    """
    check_max_pixels(max_pixels)
    if isinstance(source, np.ndarray):
        pixels = check_shape(source, name or "array", max_pixels)
        return Decoded(map_pixels(pixels, name or "array", mapping, None), array_kind(pixels))
    name = source_name(source, name)
    source = existing(source, name)
    if is_dicom_source(source, name):
        dataset, header = read_dicom(source, name, max_pixels)
        return Decoded(dicom_pixels(dataset, name, mapping, release=True), header.kind)
    read_header(source, max_pixels, name)
    decoded = check_shape(_decode_raster(source, name), name, max_pixels)
    bit_depth = 16 if decoded.dtype == np.uint16 else None
    kind = ImageKind(
        bit_depth=None if decoded.dtype.kind == "f" else (bit_depth or 8),
        photometric=COLOUR if decoded.ndim == 3 else GRAY,
    )
    return Decoded(np.ascontiguousarray(map_pixels(decoded, name, mapping, bit_depth)), kind)


def prepare_input(image: np.ndarray, size: int, channels: int, rule: str = INTERPOLATION_RULE) -> np.ndarray:
    """Decoded image -> uint8 array of shape (size, size, channels), raw 0..255 as the model expects;
    resized by `rule` (one of `RESIZE_RULES`: a model's own is `Classifier.prepare`'s)."""
    if rule not in RESIZE_RULES:
        raise ImageDecodeError(f"unknown resize rule {rule!r}; this medtk knows {', '.join(RESIZE_RULES)}")
    pixels = to_uint8(image)
    pixels = _match_channels(pixels, channels)
    height, width = pixels.shape[:2]
    if (height, width) != (size, size):
        shrinking = height * width > size * size
        interpolation = cv2.INTER_AREA if shrinking else RESIZE_RULES[rule]
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


def _decode_raster(source: Path | bytes, name: str) -> np.ndarray:
    """OpenCV's decode of a PNG/JPEG/TIFF/BMP, colour as RGB: 8-bit by OpenCV's conversion (the copy the
    model gets), deeper colour as a view of OpenCV's BGR(A) that the mapping to 8 bits copies (so it is
    never copied at 16 bits)."""
    data = np.frombuffer(source, dtype=np.uint8) if isinstance(source, bytes) else np.fromfile(source, dtype=np.uint8)
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:
        pixels = None
    if pixels is None:
        raise ImageDecodeError(f"{name}: not a readable image (corrupt, truncated or unsupported format)")
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4) and pixels.dtype == np.uint8:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB if pixels.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        return pixels[:, :, 2::-1]  # BGR or BGRA -> RGB
    return pixels

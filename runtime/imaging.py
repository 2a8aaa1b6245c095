"""Decode image files and turn pixels into model input: the one implementation training and the runtime share.

A model is only as right as its preprocessing: the device must see exactly the pixels training saw.
Both `medtk.data` (training) and `medtk.runtime.Classifier` (device) call `decode_image` and
`prepare_input`, so the rule below exists once:

1. decode: PNG/JPEG/BMP/TIFF through OpenCV (8 or 16 bit, grayscale or colour, returned as RGB);
   DICOM through pydicom and its own LUT functions (modality LUT or rescale slope/intercept, then the
   VOI LUT Sequence or else the first VOI window when present, MONOCHROME1 inverted).
2. to 8 bit: uint8 is kept; any other dtype is min-max scaled per image to 0..255 (for DICOM, the
   VOI output range maps to 0..255 instead).
3. channels: RGB -> gray by luminance (ITU-R 601) or gray -> RGB by copying.
4. resize to SxS (no aspect-ratio padding, as MedMNIST does): INTER_AREA when shrinking (anti-aliased),
   INTER_LINEAR when enlarging.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from medtk.errors import ImageDecodeError

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
# 100 megapixels: larger than any radiograph, small enough to refuse a decompression bomb.
DEFAULT_MAX_PIXELS = 100_000_000
INTERPOLATION_RULE = "area-down/linear-up"
PREPROCESSING_NOTE = (
    "decode (DICOM: modality LUT/rescale, VOI LUT or window, MONOCHROME1 inverted); non-uint8 pixels "
    "min-max scaled per image to 0..255; RGB->gray by luminance or gray->RGB by copy; resize to SxS "
    "without padding (INTER_AREA shrinking, INTER_LINEAR enlarging); all normalization in the graph"
)


def is_dicom(path: Path) -> bool:
    """A DICOM file by suffix or by the 'DICM' magic at offset 128."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def decode_image(source: str | Path | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return the image as uint8, HxW (gray) or HxWx3 (RGB); raise `ImageDecodeError` naming the file."""
    if isinstance(source, np.ndarray):
        return _check_array(source, "array", max_pixels)
    path = Path(source)
    if not path.is_file():
        raise ImageDecodeError(f"{path}: no such file")
    pixels = _read_dicom(path) if is_dicom(path) else _read_raster(path)
    return _check_array(pixels, str(path), max_pixels)


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


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Keep uint8; min-max scale any other dtype (16-bit, float, DICOM values) per image to 0..255."""
    if image.dtype == np.uint8:
        return image
    values = image.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageDecodeError("image contains NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY) if pixels.ndim == 3 else pixels
    if channels == 3:
        return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels
    raise ImageDecodeError(f"unsupported channel count {channels}; expected 1 or 3")


def _check_array(pixels: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ImageDecodeError(f"{name}: expected a gray (HxW) or RGB (HxWx3) image, got shape {pixels.shape}")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageDecodeError(f"{name}: empty image of shape {pixels.shape}")
    if pixels.shape[0] * pixels.shape[1] > max_pixels:
        raise ImageDecodeError(
            f"{name}: {pixels.shape[1]}x{pixels.shape[0]} pixels is over the limit of {max_pixels}"
        )
    if pixels.dtype == np.bool_ or pixels.dtype.kind not in "uif":
        raise ImageDecodeError(f"{name}: unsupported pixel type {pixels.dtype}")
    try:
        return to_uint8(pixels)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"{name}: {error}") from None


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


def _read_dicom(path: Path) -> np.ndarray:
    """Pixels only: no header field other than the pixel-describing ones is read, logged or kept."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        dataset = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types for a bad file
        raise ImageDecodeError(f"{path}: not a readable DICOM file ({type(error).__name__})") from None
    if "PixelData" not in dataset:
        raise ImageDecodeError(f"{path}: DICOM file has no pixel data")
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        raise ImageDecodeError(f"{path}: cannot decode DICOM pixel data ({error})") from None
    if pixels.ndim == 3 and dataset.get("SamplesPerPixel", 1) == 1:
        pixels = pixels[pixels.shape[0] // 2]  # a multi-frame volume: its middle frame
    if dataset.get("SamplesPerPixel", 1) != 1:
        return pixels
    values = apply_modality_lut(pixels, dataset)
    image = _apply_voi(values, dataset)
    if image is None:  # no (usable) VOI LUT or window: min-max instead (raw values would wrap in uint8)
        image = to_uint8(values.astype(np.float64))
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image
    return image


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

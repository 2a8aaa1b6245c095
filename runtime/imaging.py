"""Decode image files and turn pixels into model input: the one implementation training and the runtime share.

A model is only as right as its preprocessing: the device must see exactly the pixels training saw.
Both `medtk.data` (training) and `medtk.runtime.Classifier` (device) call `decode_image` and
`prepare_input`, so the rule below exists once:

1. decode: PNG/JPEG/BMP/TIFF through OpenCV (8 or 16 bit, grayscale or colour, returned as RGB);
   DICOM through pydicom (rescale slope/intercept, VOI window when present, MONOCHROME1 inverted).
2. to 8 bit: uint8 is kept; any other dtype is min-max scaled per image to 0..255 (for DICOM, the
   window maps to 0..255 first).
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
    "decode (DICOM: rescale slope/intercept, VOI window, MONOCHROME1 inverted); non-uint8 pixels "
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
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    if "WindowCenter" in dataset and "WindowWidth" in dataset:
        image = np.round(_apply_window(values, dataset)).astype(np.uint8)
    else:
        image = to_uint8(values)
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image
    return image


def _apply_window(values: np.ndarray, dataset) -> np.ndarray:
    """Linear VOI window (DICOM PS3.3 C.11.2.1.2), first window when several are given, to 0..255."""
    center, width = dataset.WindowCenter, dataset.WindowWidth
    center = float(center[0] if _is_multi(center) else center)
    width = float(width[0] if _is_multi(width) else width)
    if width < 1:  # no usable window: min-max instead (raw values would wrap around in uint8)
        return to_uint8(values).astype(np.float64)
    low = center - 0.5 - (width - 1) / 2
    high = center - 0.5 + (width - 1) / 2
    return np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0


def _is_multi(value) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"

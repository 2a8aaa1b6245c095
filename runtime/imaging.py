"""Decode image files and turn pixels into model input: the one implementation training and the runtime share.

A model is only as right as its preprocessing: the device must see exactly the pixels training saw.
Both `medtk.data` (training) and `medtk.runtime.Classifier` (device) call `read_image`/`decode_image`
and `prepare_input`, so the rule below exists once:

0. header first: the dimensions are read from the file's header (PNG IHDR, JPEG SOF, TIFF IFD0, BMP
   info header; DICOM Rows/Columns/NumberOfFrames/SamplesPerPixel via pydicom without pixel data)
   and an image over the pixel limit is refused before anything is decoded or allocated. Other
   formats are refused.
1. decode: PNG/JPEG/BMP/TIFF through OpenCV (8 or 16 bit, grayscale or colour, returned as RGB);
   DICOM through pydicom and its own LUT functions (modality LUT or rescale slope/intercept, then the
   VOI LUT Sequence or else the first VOI window when present, MONOCHROME1 inverted).
2. to 8 bit by the model's intensity mapping (intensity.py): `full-range/1` is deterministic - uint8
   kept, 16-bit files over their full range (x257 copies map back exactly), DICOM through its window
   or else its stored range (BitsStored), floats in [0, 1] x255 or in [0, 255] kept, anything else
   refused. Models exported before schema 3 keep their training's per-image min-max.
3. channels: RGB -> gray by luminance (ITU-R 601) or gray -> RGB by copying.
4. resize to SxS (no aspect-ratio padding, as MedMNIST does): INTER_AREA when shrinking (anti-aliased),
   INTER_LINEAR when enlarging.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.intensity import COLOUR, FULL_RANGE, GRAY, MINMAX, ImageKind, array_kind, to_uint8

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
    "read_image",
    "to_uint8",
]

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
# 100 megapixels: larger than any radiograph, small enough to refuse a decompression bomb.
DEFAULT_MAX_PIXELS = 100_000_000
INTERPOLATION_RULE = "area-down/linear-up"
PREPROCESSING_NOTE = (
    "decode (DICOM: modality LUT/rescale, VOI LUT or window, MONOCHROME1 inverted); to 8 bit by the "
    "intensity mapping 'full-range/1': uint8 kept, 16-bit over its full range (v*255/65535, so x257 "
    "copies map back exactly), DICOM by its window or else its stored range (BitsStored), floats in "
    "[0,1] x255 or in [0,255] kept, other ranges refused; RGB->gray by luminance or gray->RGB by copy; "
    "resize to SxS without padding (INTER_AREA shrinking, INTER_LINEAR enlarging); all normalization "
    "in the graph"
)


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding its pixels."""

    format: str  # "png", "jpeg", "tiff", "bmp", "dicom"
    width: int
    height: int
    frames: int
    kind: ImageKind

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames


@dataclass(frozen=True)
class Decoded:
    """An image as the model's preprocessing takes it: uint8 HxW or HxWx3, and what the source was."""

    pixels: np.ndarray
    kind: ImageKind


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
        pixels = _check_shape(source, "array", max_pixels)
        return Decoded(_mapped(pixels, "array", mapping, None), array_kind(pixels))
    path = Path(source)
    if path.is_dir():
        raise ImageDecodeError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise ImageDecodeError(f"{path}: no such file")
    header = probe(path)
    _check_limit(header.width, header.height, header.frames, str(path), max_pixels)
    if header.format == "dicom":
        return Decoded(_read_dicom(path, mapping), header.kind)
    pixels = _check_shape(_read_raster(path), str(path), max_pixels)
    bit_depth = 16 if pixels.dtype == np.uint16 else None
    kind = ImageKind(
        bit_depth=None if pixels.dtype.kind == "f" else (bit_depth or 8),
        photometric=COLOUR if pixels.ndim == 3 else GRAY,
    )
    return Decoded(_mapped(pixels, str(path), mapping, bit_depth), kind)


def probe(path: Path) -> ImageHeader:
    """The header of an image file (format, size, kind) without decoding pixels; `ImageDecodeError` otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(132)
            if start[128:132] == b"DICM" or (path.suffix.lower() in DICOM_SUFFIXES):
                return _dicom_header(path)
            for magic, reader in _RASTER_HEADERS:
                if start.startswith(magic):
                    return reader(handle)
    except (OSError, struct.error, ValueError, OverflowError) as error:
        raise ImageDecodeError(f"{path}: not a readable image header ({_reason(error)})") from None
    if not start:
        raise ImageDecodeError(f"{path}: not a readable image (empty file)")
    raise ImageDecodeError(f"{path}: not a readable image (not a PNG, JPEG, TIFF, BMP or DICOM file)")


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


def _check_shape(pixels: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ImageDecodeError(f"{name}: expected a gray (HxW) or RGB (HxWx3) image, got shape {pixels.shape}")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageDecodeError(f"{name}: empty image of shape {pixels.shape}")
    _check_limit(pixels.shape[1], pixels.shape[0], 1, name, max_pixels)
    if pixels.dtype == np.bool_ or pixels.dtype.kind not in "uif":
        raise ImageDecodeError(f"{name}: unsupported pixel type {pixels.dtype}")
    return pixels


def _check_limit(width: int, height: int, frames: int, name: str, max_pixels: int) -> None:
    if width < 1 or height < 1 or frames < 1:
        raise ImageDecodeError(f"{name}: header says {width}x{height} pixels x {frames} frames; not an image")
    if width * height * frames > max_pixels:
        frames_text = f" x {frames} frames" if frames > 1 else ""
        raise ImageDecodeError(f"{name}: {width}x{height} pixels{frames_text} is over the limit of {max_pixels}")


def _mapped(pixels: np.ndarray, name: str, mapping: str, bit_depth: int | None) -> np.ndarray:
    try:
        return to_uint8(pixels, mapping, bit_depth)
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


def read_dicom_dataset(dataset, name: str, max_pixels: int = DEFAULT_MAX_PIXELS, mapping: str = FULL_RANGE) -> Decoded:
    """`read_image` for a DICOM data set already read whole (by a caller that also needs its header,
    such as `medtk serve`): the same header checks, pixel limit and intensity mapping, `name` in errors."""
    header = _dicom_header_of(dataset, name)
    _check_limit(header.width, header.height, header.frames, name, max_pixels)
    return Decoded(_dicom_pixels(dataset, name, mapping), header.kind)


def _read_dicom(path: Path, mapping: str) -> np.ndarray:
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
        raise ImageDecodeError(f"{path}: cannot decode DICOM pixel data ({_reason(error)})") from None
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if pixels.ndim == (4 if samples != 1 else 3):
        pixels = pixels[pixels.shape[0] // 2]  # a multi-frame volume: its middle frame
    bits = int(dataset.get("BitsStored", 0) or 0) or None
    if samples != 1:
        pixels = _check_shape(pixels, str(path), pixels.size)
        return _mapped(pixels, str(path), mapping, bits if pixels.dtype.kind == "u" else None)
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
        raise ImageDecodeError(f"{path}: cannot apply the DICOM intensity transforms ({_reason(error)})") from None
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image
    return _check_shape(image, str(path), image.size)


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


def _dicom_header(path: Path) -> ImageHeader:
    """The header of a DICOM file, read without the pixel data."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many types for a bad file
        raise ImageDecodeError(f"{path}: not a readable DICOM file ({type(error).__name__})") from None
    return _dicom_header_of(dataset, str(path))


def _dicom_header_of(dataset, path: str) -> ImageHeader:
    """Rows, Columns, NumberOfFrames, SamplesPerPixel, BitsStored, PhotometricInterpretation and Modality;
    absurd or inconsistent values are refused here."""
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
        allocated = int(dataset.get("BitsAllocated", 0) or 0)
        stored = int(dataset.get("BitsStored", allocated) or 0)
        photometric = str(dataset.get("PhotometricInterpretation", "") or "").strip()
        modality = str(dataset.get("Modality", "") or "").strip()
    except Exception as error:  # pydicom raises many types for a bad file or value
        raise ImageDecodeError(f"{path}: not a readable DICOM file ({type(error).__name__})") from None
    if samples not in (1, 3):
        raise ImageDecodeError(f"{path}: SamplesPerPixel {samples} is not 1 (gray) or 3 (colour)")
    if allocated not in (1, 8, 16, 32) or not 1 <= stored <= allocated:
        raise ImageDecodeError(f"{path}: BitsAllocated {allocated} / BitsStored {stored} are not usable")
    kind = ImageKind(bit_depth=stored, photometric=photometric or (GRAY if samples == 1 else COLOUR), modality=modality)
    return ImageHeader(format="dicom", width=columns, height=rows, frames=frames, kind=kind)


def _png_header(handle) -> ImageHeader:
    handle.seek(8)
    length, chunk = struct.unpack(">I4s", handle.read(8))
    if chunk != b"IHDR" or length < 13:
        raise ValueError("PNG without an IHDR chunk first")
    width, height, depth, colour = struct.unpack(">IIBB", handle.read(10))
    gray = colour in (0, 4)  # 2 RGB, 3 palette (decoded as RGB), 6 RGBA
    return ImageHeader("png", width, height, 1, ImageKind(bit_depth=16 if depth == 16 else 8,
                                                         photometric=GRAY if gray else COLOUR))


_JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0..SOF15 (not DHT, JPG, DAC)


def _jpeg_header(handle) -> ImageHeader:
    handle.seek(2)
    while True:
        byte = handle.read(1)
        if not byte:
            raise ValueError("JPEG without a frame header")
        if byte != b"\xff":
            continue
        marker = handle.read(1)
        while marker == b"\xff":
            marker = handle.read(1)
        if not marker or marker[0] in (0xD9, 0xDA):  # end of image or start of scan before a frame header
            raise ValueError("JPEG without a frame header")
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
            continue
        (length,) = struct.unpack(">H", handle.read(2))
        if code in _JPEG_FRAMES:
            precision, height, width, components = struct.unpack(">BHHB", handle.read(6))
            kind = ImageKind(bit_depth=8 if precision <= 8 else precision, photometric=GRAY if components == 1 else COLOUR)
            return ImageHeader("jpeg", width, height, 1, kind)
        if length < 2:
            raise ValueError("JPEG segment shorter than its length field")
        handle.seek(length - 2, 1)


_TIFF_PHOTOMETRIC = {0: "MONOCHROME1", 1: GRAY, 2: COLOUR, 3: COLOUR, 6: COLOUR}


def _tiff_header(handle) -> ImageHeader:
    handle.seek(0)
    order = {b"II": "<", b"MM": ">"}[handle.read(2)]
    (version,) = struct.unpack(order + "H", handle.read(2))
    if version != 42:
        raise ValueError("BigTIFF is not supported")
    (offset,) = struct.unpack(order + "I", handle.read(4))
    handle.seek(offset)
    (count,) = struct.unpack(order + "H", handle.read(2))
    tags: dict[int, int] = {}
    for _ in range(count):
        tag, kind, number, value = struct.unpack(order + "HHI4s", handle.read(12))
        if kind == 3:  # SHORT: the first one is inline (BitsPerSample: every sample has the same depth here)
            first = struct.unpack(order + "H", value[:2])[0]
            if number > 2:
                position = handle.tell()
                handle.seek(struct.unpack(order + "I", value)[0])
                first = struct.unpack(order + "H", handle.read(2))[0]
                handle.seek(position)
            tags[tag] = first
        elif kind == 4:  # LONG
            tags[tag] = struct.unpack(order + "I", value)[0]
    if 256 not in tags or 257 not in tags:
        raise ValueError("TIFF without ImageWidth/ImageLength")
    samples, depth = tags.get(277, 1), tags.get(258, 1)
    photometric = _TIFF_PHOTOMETRIC.get(tags.get(262, 1), COLOUR if samples >= 3 else GRAY)
    float_samples = tags.get(339, 1) == 3
    kind = ImageKind(bit_depth=None if float_samples else (8 if depth <= 8 else depth), photometric=photometric)
    return ImageHeader("tiff", tags[256], tags[257], 1, kind)


def _bmp_header(handle) -> ImageHeader:
    handle.seek(14)
    (size,) = struct.unpack("<I", handle.read(4))
    if size == 12:
        width, height, _, bits = struct.unpack("<HHHH", handle.read(8))
    else:
        width, height, _, bits = struct.unpack("<iiHH", handle.read(12))
    return ImageHeader("bmp", abs(width), abs(height), 1,
                       ImageKind(bit_depth=8, photometric=COLOUR if bits >= 24 else GRAY))


_RASTER_HEADERS = (
    (b"\x89PNG\r\n\x1a\n", _png_header),
    (b"\xff\xd8", _jpeg_header),
    (b"II*\x00", _tiff_header),
    (b"MM\x00*", _tiff_header),
    (b"II+\x00", _tiff_header),
    (b"MM\x00+", _tiff_header),
    (b"BM", _bmp_header),
)


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""What an image file's header says, read without decoding its pixels: format, size, frames and kind.

`imaging.read_image` checks these numbers against the pixel limit before anything is decoded or
allocated, and `intensity.describe_intensity` records the kinds a training set holds from them. Read
here: PNG IHDR, JPEG SOF, TIFF IFD0, BMP info header, DICOM Rows/Columns/NumberOfFrames/
SamplesPerPixel/BitsStored/PhotometricInterpretation/Modality via pydicom without its pixel data.
Other formats are refused.

Nothing here imports the decoders or the intensity mapping: both stand on this module (which is why
`ImageKind` is defined here).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from medtk.errors import ImageDecodeError
from medtk.runtime.messages import first_line

__all__ = [
    "COLOUR",
    "DICOM_SUFFIXES",
    "GRAY",
    "IMAGE_SUFFIXES",
    "ImageHeader",
    "ImageKind",
    "dicom_header",
    "is_dicom",
    "probe",
]

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
GRAY, COLOUR = "MONOCHROME2", "RGB"


@dataclass(frozen=True)
class ImageKind:
    """What an image is, before any mapping: the facts training and the device compare."""

    bit_depth: int | None  # bits per sample as stored (8, 12, 16, ...); None for float pixels
    photometric: str  # "MONOCHROME2" (gray), "MONOCHROME1", "RGB", a DICOM "YBR_..." value
    modality: str = ""  # the DICOM Modality ("CR", "DX", "CT", ...); "" when the source does not say

    def describe(self) -> str:
        depth = "float" if self.bit_depth is None else f"{self.bit_depth}-bit"
        return " ".join(part for part in (depth, self.photometric, self.modality) if part)


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


def probe(path: Path) -> ImageHeader:
    """The header of an image file (format, size, kind) without decoding pixels; `ImageDecodeError` otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(132)
            if start[128:132] == b"DICM" or (path.suffix.lower() in DICOM_SUFFIXES):
                return _dicom_file_header(path)
            for magic, reader in _RASTER_HEADERS:
                if start.startswith(magic):
                    return reader(handle)
    except (OSError, struct.error, ValueError, OverflowError) as error:
        raise ImageDecodeError(f"{path}: not a readable image header ({first_line(error)})") from None
    if not start:
        raise ImageDecodeError(f"{path}: not a readable image (empty file)")
    raise ImageDecodeError(f"{path}: not a readable image (not a PNG, JPEG, TIFF, BMP or DICOM file)")


def _dicom_file_header(path: Path) -> ImageHeader:
    """The header of a DICOM file, read without the pixel data."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many types for a bad file
        raise ImageDecodeError(f"{path}: not a readable DICOM file ({type(error).__name__})") from None
    return dicom_header(dataset, str(path))


def dicom_header(dataset, path: str) -> ImageHeader:
    """Rows, Columns, NumberOfFrames, SamplesPerPixel, BitsStored, PhotometricInterpretation and Modality
    of a pydicom data set; absurd or inconsistent values are refused here (`path` names it in errors)."""
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

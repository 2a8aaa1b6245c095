"""What a raster image's header says, read without decoding its pixels: format, size, frames and kind.

`limits.check_image` checks these numbers (pixel limit, one frame) before anything is decoded or
allocated, and `intensity.describe_intensity` records the kinds a training set holds from them. Read
here: PNG IHDR (and an animated PNG's frame count, acTL), JPEG SOF, TIFF IFD0 (and the pages after it),
BMP info header. DICOM headers are dicom_header.py's; other formats are refused.

Nothing here imports the decoders or the intensity mapping: both stand on this module (which is why
`ImageKind` and `ImageHeader` are defined here).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from medtk.errors import ImageDecodeError
from medtk.runtime.messages import first_line

__all__ = [
    "COLOUR",
    "DICOM_SUFFIXES",
    "GRAY",
    "IMAGE_SUFFIXES",
    "ImageHeader",
    "ImageKind",
    "is_dicom",
    "raster_header",
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


def raster_header(handle: BinaryIO, name: str) -> ImageHeader:
    """The header of a PNG, JPEG, TIFF or BMP (`handle` at its start) without decoding pixels; else `ImageDecodeError`."""
    try:
        start = handle.read(8)
        for magic, reader in _RASTER_HEADERS:
            if start.startswith(magic):
                return reader(handle)
    except (OSError, struct.error, ValueError, OverflowError) as error:
        raise ImageDecodeError(f"{name}: not a readable image header ({first_line(error)})") from None
    if not start:
        raise ImageDecodeError(f"{name}: not a readable image (empty file)")
    raise ImageDecodeError(f"{name}: not a readable image (not a PNG, JPEG, TIFF, BMP or DICOM file)")


def _png_header(handle) -> ImageHeader:
    handle.seek(8)
    length, chunk = struct.unpack(">I4s", handle.read(8))
    if chunk != b"IHDR" or length < 13:
        raise ValueError("PNG without an IHDR chunk first")
    width, height, depth, colour = struct.unpack(">IIBB", handle.read(10))
    gray = colour in (0, 4)  # 2 RGB, 3 palette (decoded as RGB), 6 RGBA
    kind = ImageKind(bit_depth=16 if depth == 16 else 8, photometric=GRAY if gray else COLOUR)
    return ImageHeader("png", width, height, _png_frames(handle, 8 + 8 + length + 4), kind)


def _png_frames(handle, offset: int) -> int:
    """An animated PNG's frame count (acTL, which comes before the first IDAT); 1 for a still PNG."""
    while True:
        handle.seek(offset)
        length, chunk = struct.unpack(">I4s", handle.read(8))
        if chunk == b"acTL":
            return max(1, struct.unpack(">I", handle.read(4))[0])
        if chunk in (b"IDAT", b"IEND"):
            return 1
        offset += 8 + length + 4


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
    return ImageHeader("tiff", tags[256], tags[257], _tiff_pages(handle, order), kind)


def _tiff_pages(handle, order: str, most: int = 1024) -> int:
    """How many pages (IFDs) the chain from the one just read holds, counted up to `most`; a loop ends it."""
    pages, seen = 1, set()
    (offset,) = struct.unpack(order + "I", handle.read(4))  # the offset of the next IFD, 0 after the last
    while offset and offset not in seen and pages < most:
        seen.add(offset)
        handle.seek(offset)
        (count,) = struct.unpack(order + "H", handle.read(2))
        handle.seek(offset + 2 + 12 * count)
        (offset,) = struct.unpack(order + "I", handle.read(4))
        pages += 1
    return pages


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

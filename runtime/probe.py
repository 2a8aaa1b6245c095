"""What any image's header says (raster or DICOM; a path or the file's bytes), and whether the runtime takes it.

`read_header` reads only a header and applies the runtime's checks to it (limits.py, and for DICOM
dicom_header.py): what `medtk.runtime.check_header` gives callers such as `medtk serve`. `probe` is the
same without the pixel limit (training records the kinds of its images with it).
"""

from __future__ import annotations

import io
from pathlib import Path

from medtk.errors import ImageDecodeError
from medtk.runtime.dicom_file import read_dicom
from medtk.runtime.headers import DICOM_SUFFIXES, ImageHeader, raster_header
from medtk.runtime.limits import DEFAULT_MAX_PIXELS, check_image

__all__ = ["existing", "is_dicom_source", "probe", "read_header", "source_name"]

_ANY_SIZE = 1 << 62  # `probe` reports a header whatever its size


def source_name(source: str | Path | bytes, name: str | None = None) -> str:
    """The name errors use: `name`, else the path; bytes without a name are "the image"."""
    if name is not None:
        return name
    return "the image" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def is_dicom_source(source: str | Path | bytes, name: str) -> bool:
    """DICOM by its 'DICM' magic at offset 128, or by a DICOM suffix on the path (or `name` for bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        start, suffix = bytes(source[128:132]), Path(name).suffix
    else:
        with open(source, "rb") as handle:
            start, suffix = handle.read(132)[128:132], Path(source).suffix
    return start == b"DICM" or suffix.lower() in DICOM_SUFFIXES


def probe(source: str | Path | bytes, name: str | None = None) -> ImageHeader:
    """The header of an image (format, size, frames, kind) without decoding its pixels, whatever its size;
    `ImageDecodeError` for anything else `read_header` refuses."""
    return read_header(source, _ANY_SIZE, name)


def read_header(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> ImageHeader:
    """The header when the runtime can decode the image (one 2-D image within `max_pixels`, a layout and
    encoding it reads); else a one-line `ImageDecodeError` naming the image."""
    name = source_name(source, name)
    source = existing(source, name)
    try:
        if is_dicom_source(source, name):
            return read_dicom(source, name, max_pixels, pixels=False)[1]
        with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as handle:
            header = raster_header(handle, name)
    except OSError as error:
        raise ImageDecodeError(f"{name}: cannot read the file ({error.strerror or type(error).__name__})") from None
    return check_image(header, name, max_pixels)


def existing(source: str | Path | bytes, name: str) -> Path | bytes:
    """Bytes as they are, a path as a `Path` to a file; a folder or a missing path is an `ImageDecodeError`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    if path.is_dir():
        raise ImageDecodeError(f"{name}: is a directory, not an image file")
    if not path.is_file():
        raise ImageDecodeError(f"{name}: no such file")
    return path

"""A DICOM file or its bytes -> a pydicom data set whose header passed `check_dicom`, in bounded memory.

pydicom inflates a Deflated Explicit VR Little Endian data set with one `zlib.decompress` of the whole
body, headers included: a 1 MB file of zeros inflates to 1 GiB before anything is checked. Here that body
is inflated in chunks while pydicom reads it (`_Inflating`), at most `NON_PIXEL_BYTES` until the Pixel
Data element, whose header is then checked (`check_dicom`: the pixel limit, one frame, the layout, the
Pixel Data length the header implies), and at most that length and `NON_PIXEL_BYTES` more after it. The
bound for one image is so the native Pixel Data an image within `max_pixels` can need (max_pixels x
SamplesPerPixel x BitsAllocated/8) plus 16 MiB: everything else in a data set - a Siemens CSA header
(~100 kB), an icon image, an overlay plane (1 bit per pixel: 2 MB at 4096x4096) - fits many times over.
Anything larger is refused in one line naming the file.

Every other transfer syntax is read by pydicom as it is; its size is the file's. A header-only read
(`pixels=False`) defers large values, so the Pixel Data length is still known and checked.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from medtk.errors import ImageDecodeError
from medtk.runtime.dicom_fields import code
from medtk.runtime.dicom_header import check_dicom
from medtk.runtime.headers import ImageHeader

__all__ = ["NON_PIXEL_BYTES", "read_dicom"]

NON_PIXEL_BYTES = 16 << 20  # what a deflated data set may inflate to besides its Pixel Data (module docstring)
_CHUNK = 1 << 20  # deflated bytes read, and inflated bytes made, per step
_DEFER_BYTES = 1 << 16  # header-only reads leave values larger than this in the file
_DEFLATED = "1.2.840.10008.1.2.1.99"
_PIXEL_ELEMENT_HEADER = 12  # tag, VR, reserved, 4-byte length: explicit VR little endian OB/OW


def read_dicom(source: Path | bytes, name: str, max_pixels: int, pixels: bool = True) -> tuple[Any, ImageHeader]:
    """The data set in `source` (a path or the file's bytes) and its checked header; `pixels=False` stops
    before the Pixel Data's value. Unreadable files and refused headers are `ImageDecodeError`s naming `name`."""
    import pydicom

    with _open(source) as stream:
        try:
            meta = _file_meta(stream)
        except Exception as error:  # pydicom raises many types for a bad file
            raise ImageDecodeError(f"{name}: not a readable DICOM file ({type(error).__name__})") from None
        if code(meta, "TransferSyntaxUID", name) == _DEFLATED:
            return _read_deflated(stream, meta, name, max_pixels, pixels)
        stream.seek(0)
        try:
            dataset = pydicom.dcmread(stream, defer_size=None if pixels else _DEFER_BYTES)
        except Exception as error:
            raise ImageDecodeError(f"{name}: not a readable DICOM file ({type(error).__name__})") from None
        return dataset, check_dicom(dataset, name, max_pixels)


def _open(source: Path | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else open(source, "rb")


def _file_meta(stream: BinaryIO):
    """The File Meta Information (group 0002) after the preamble, the stream left at the data set."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filereader import read_dataset, read_preamble

    read_preamble(stream, False)
    meta = read_dataset(stream, is_implicit_VR=False, is_little_endian=True, stop_when=lambda tag, vr, length: tag >> 16 != 2)
    return FileMetaDataset(meta)


def _read_deflated(stream: BinaryIO, meta, name: str, max_pixels: int, pixels: bool) -> tuple[Any, ImageHeader]:
    """Read the deflated body in two passes over one `_Inflating` stream: the header, checked, then all of it."""
    from pydicom.filereader import read_dataset

    body = _Inflating(stream, name, limit=NON_PIXEL_BYTES)
    found: dict[str, int] = {}

    def at_pixel_data(tag, vr, length) -> bool:  # Pixel Data, Float or Double Float Pixel Data
        if tag == 0x7FE00010:
            found["length"] = length
        return tag in (0x7FE00008, 0x7FE00009, 0x7FE00010)

    try:
        header = read_dataset(body, is_implicit_VR=False, is_little_endian=True, stop_when=at_pixel_data)
        header.file_meta = meta
        checked = check_dicom(header, name, max_pixels, found.get("length"))
        if not pixels or "length" not in found:
            return header, checked
        body.limit = body.tell() + _PIXEL_ELEMENT_HEADER + found["length"] + NON_PIXEL_BYTES
        body.seek(0)
        dataset = read_dataset(body, is_implicit_VR=False, is_little_endian=True)
    except ImageDecodeError:
        raise
    except Exception as error:  # pydicom or zlib on a damaged stream
        raise ImageDecodeError(f"{name}: not a readable DICOM file ({type(error).__name__})") from None
    dataset.file_meta = meta
    return dataset, checked


class _Inflating(io.RawIOBase):
    """A seekable stream over a raw-deflated body, inflated on demand; more than `limit` bytes is refused."""

    def __init__(self, source: BinaryIO, name: str, limit: int):
        super().__init__()
        self._source, self._name, self.limit = source, name, limit
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._data = bytearray()
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            self._inflate(until=None)
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._data)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = None if size is None or size < 0 else self._position + size
        self._inflate(until=end)
        view = memoryview(self._data)
        try:
            chunk = view[self._position:end].tobytes()  # one copy, which pydicom keeps as the element's value
        finally:
            view.release()
        self._position += len(chunk)
        return chunk

    def _inflate(self, until: int | None) -> None:
        """Inflate until `until` bytes exist (None: all), the body ends, or the limit is passed (an error)."""
        while (until is None or len(self._data) < until) and not self._inflater.eof:
            pending = self._inflater.unconsumed_tail or self._source.read(_CHUNK)
            inflated = self._inflater.decompress(pending, min(_CHUNK, self.limit - len(self._data) + 1))
            if not pending and not inflated:
                return  # truncated: pydicom sees the end of the stream
            self._data += inflated
            if len(self._data) > self.limit:
                raise ImageDecodeError(
                    f"{self._name}: the deflated data set inflates to more than {self.limit} bytes, more than "
                    f"an image within the pixel limit needs"
                )

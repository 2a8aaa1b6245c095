"""A Deflated Explicit VR Little Endian DICOM file inflated in bounded steps, or refused.

pydicom inflates a deflated data set whole, in memory, as it opens it: ~1 MB received can become
1 GiB. Here the deflate stream is inflated in chunks of at most `CHUNK` bytes into a new file, with the
file meta's transfer syntax set to Explicit VR Little Endian (what a deflated data set is once
inflated), and refused as soon as the inflated size passes the limit; only then is the header read.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import BinaryIO

from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.dsutils import split_dataset

CHUNK = 1 << 20  # bytes read, and at most bytes inflated, per step


class InflatesTooLarge(Exception):
    """The data set inflates past the limit."""


def inflate_file(source: Path, target: Path, limit: int) -> None:
    """Write `source` (a Deflated Explicit VR Little Endian file) to `target` inflated, as Explicit VR
    Little Endian; raise `InflatesTooLarge` once its data set passes `limit` bytes (`target` is then
    partial: the caller removes it)."""
    file_meta, offset = split_dataset(source)
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with open(source, "rb") as compressed, open(target, "wb") as out:
        out.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(DicomFileLike(out), file_meta)
        compressed.seek(offset)
        inflate_stream(compressed, out, limit)


def inflate_stream(compressed: BinaryIO, out: BinaryIO, limit: int) -> int:
    """Copy a raw deflate stream (RFC 1951, as DICOM deflates) inflated; the bytes written."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    written = 0
    while not inflater.eof and (block := compressed.read(CHUNK)):
        data = inflater.decompress(block, CHUNK)
        while data:  # max_length leaves the rest of the input in unconsumed_tail
            written += len(data)
            if written > limit:
                raise InflatesTooLarge(f"the data set inflates past {limit} bytes")
            out.write(data)
            data = inflater.decompress(inflater.unconsumed_tail, CHUNK)
    return written

"""TFRecord framing without TensorFlow: what `tf.io.TFRecordWriter` writes, byte for byte.

A record is `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`, little
endian; the mask is TensorFlow's (rotate right by 15, add 0xa282ead8). Reading checks both checksums,
so a flipped bit or a truncated tail is an error naming the shard and the record, never a wrong image.
CRC32C is google-crc32c (Google's C library, with a pure-Python fallback where no wheel fits).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterator

import google_crc32c

from medtk.errors import DataError

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def write_record(stream: BinaryIO, data: bytes) -> int:
    """Append one record; returns the bytes written (header, data and footer)."""
    length = struct.pack("<Q", len(data))
    stream.write(length + struct.pack("<I", masked_crc(length)))
    stream.write(data)
    stream.write(_FOOTER.pack(masked_crc(data)))
    return _HEADER.size + len(data) + _FOOTER.size


def read_record_at(path: Path, offset: int) -> bytes:
    """The record starting at byte `offset` (from a shard's index), checksums verified."""
    with open(path, "rb") as stream:
        stream.seek(offset)
        return next(_records(stream, path, f"record at byte {offset}"))


def read_records(path: Path) -> Iterator[bytes]:
    """Every record of one uncompressed TFRecord file, checksums verified."""
    with open(path, "rb") as stream:
        yield from _records(stream, path)


def _records(stream: BinaryIO, path: Path, first: str | None = None) -> Iterator[bytes]:
    index = 0
    while True:
        name = first if (first and index == 0) else f"record {index}"
        header = stream.read(_HEADER.size)
        if not header:
            if first:
                raise DataError(f"{path}: no {name} (the file is shorter than its index says)")
            return
        if len(header) < _HEADER.size:
            raise DataError(f"{path}: truncated in {name}")
        length, length_crc = _HEADER.unpack(header)
        if masked_crc(header[:8]) != length_crc:
            raise DataError(f"{path}: {name}: length checksum mismatch (corrupt file)")
        data = stream.read(length)
        footer = stream.read(_FOOTER.size)
        if len(data) < length or len(footer) < _FOOTER.size:
            raise DataError(f"{path}: truncated in {name}")
        if masked_crc(data) != _FOOTER.unpack(footer)[0]:
            raise DataError(f"{path}: {name}: data checksum mismatch (corrupt file)")
        yield data
        index += 1

"""The medtk metadata inside an `.onnx` file, found and written as bytes: no `onnx` package, no ONNX Runtime.

An ONNX model is a protobuf `ModelProto`; its `metadata_props` (field 14) is a list of string
key/value pairs. medtk stores its metadata JSON (metadata.py, the same document as in a `.tflite`) as
the value of the key `medtk.metadata`, and the seal slot (integrity.py) is a top-level key of that JSON,
exactly as in a `.tflite`. This module walks only the top level of the protobuf wire format (tags,
varints, lengths, each checked against the file's size) to say where that value's bytes lie, so the
seal is verified over the file's bytes before ONNX Runtime parses anything, and filled in place at
export (the slot has a fixed length, so no protobuf length changes).
"""

from __future__ import annotations

import hashlib
from typing import Iterator

from medtk.errors import ModelError

_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {1: key, 2: value}
_GRAPH = 7  # ModelProto.graph
_LENGTH_DELIMITED = 2


def metadata_key(name: str) -> str:
    """The `metadata_props` key of the named medtk document ("medtk" -> "medtk.metadata")."""
    return f"{name}.metadata"


def is_onnx(model: bytes) -> bool:
    """Whether the bytes parse as a ModelProto at the top level and hold a graph."""
    try:
        return any(number == _GRAPH for number, *_ in _fields(model, 0, len(model)))
    except ValueError:
        return False


def metadata_span(model: bytes, name: str, label: str = "model") -> tuple[int, int] | None:
    """(start, end) in `model` of the value stored under `metadata_key(name)`, or None when absent.
    Two entries with that key are an altered file (a reader could pick either)."""
    try:
        found = [span for key, span, _ in _entries(model) if key == metadata_key(name).encode()]
    except ValueError as error:
        raise ModelError(f"{label}: corrupt ONNX model ({error})") from None
    if len(found) > 1:
        raise ModelError(f"{label}: the ONNX model holds {metadata_key(name)!r} more than once (the file was altered)")
    return found[0] if found else None


def read_metadata_bytes(model: bytes, name: str, label: str = "model") -> bytes | None:
    span = metadata_span(model, name, label)
    return None if span is None else model[span[0] : span[1]]


def embed(model: bytes, name: str, data: bytes) -> bytes:
    """The model with `data` under `metadata_key(name)`, replacing any earlier entry of that key;
    every other field keeps its bytes and order (the entry is appended: protobuf merges repeated
    fields in any order)."""
    return strip(model, name) + _entry(metadata_key(name).encode(), data)


def strip(model: bytes, name: str) -> bytes:
    """The model without its `metadata_key(name)` entries: the graph and weights as converted."""
    key = metadata_key(name).encode()
    try:
        drop = [field for entry_key, _, field in _entries(model) if entry_key == key]
    except ValueError as error:
        raise ModelError(f"model: corrupt ONNX model ({error})") from None
    parts, position = [], 0
    for start, end in drop:
        parts.append(model[position:start])
        position = end
    parts.append(model[position:])
    return b"".join(parts)


def graph_sha256(model: bytes, name: str) -> str:
    """sha256 of the model without medtk's metadata: the ONNX counterpart of the TFLite weights checksum."""
    return hashlib.sha256(strip(model, name)).hexdigest()


def _entries(model: bytes) -> Iterator[tuple[bytes, tuple[int, int], tuple[int, int]]]:
    """(key, value span, whole field span) of every metadata_props entry."""
    for number, wire, start, end, field_start in _fields(model, 0, len(model)):
        if number != _METADATA_PROPS or wire != _LENGTH_DELIMITED:
            continue
        key, value = b"", (start, start)
        for inner, inner_wire, s, e, _ in _fields(model, start, end):
            if inner == 1 and inner_wire == _LENGTH_DELIMITED:
                key = model[s:e]
            elif inner == 2 and inner_wire == _LENGTH_DELIMITED:
                value = (s, e)
        yield key, value, (field_start, end)


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, value start, value end, field start) of each field in data[start:end]."""
    position = start
    while position < end:
        field_start = position
        tag, position = _varint(data, position, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError(f"field number 0 at byte {field_start}")
        if wire == 0:
            _, value_end = _varint(data, position, end)
            value_start = position
        elif wire == 1:
            value_start, value_end = position, position + 8
        elif wire == _LENGTH_DELIMITED:
            length, value_start = _varint(data, position, end)
            value_end = value_start + length
        elif wire == 5:
            value_start, value_end = position, position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {field_start}")
        if value_end > end:
            raise ValueError(f"field {number} at byte {field_start} runs past its end")
        yield number, wire, value_start, value_end, field_start
        position = value_end


def _varint(data: bytes, position: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise ValueError(f"truncated varint at byte {position}")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        shift += 7
        if not byte & 0x80:
            return value, position


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


def _entry(key: bytes, value: bytes) -> bytes:
    return _length_delimited(_METADATA_PROPS, _length_delimited(1, key) + _length_delimited(2, value))

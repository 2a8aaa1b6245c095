"""Which file format a model is (`.tflite` flatbuffer or `.onnx` protobuf), told from its bytes, and where
each keeps the medtk metadata: the one dispatch the seal, the metadata and the classifier share.

A `.tflite` keeps the metadata JSON in a named flatbuffer buffer (flatbuffer.py), an `.onnx` in a
`metadata_props` entry (onnx_file.py); the JSON, the seal slot inside it and the signature are the same.
The format comes from the content ('TFL3' identifier, else a ModelProto with a graph), never from the
file name, so a renamed file is still checked by its own rules.
"""

from __future__ import annotations

from pathlib import Path

from medtk.errors import ModelError
from medtk.runtime import flatbuffer, onnx_file

TFLITE = "tflite"
ONNX = "onnx"


def model_format(model: bytes, name: str = "model") -> str:
    """"tflite" or "onnx"; anything else is a one-line `ModelError` before any parser sees the bytes."""
    if len(model) >= 8 and model[4:8] == flatbuffer.TFLITE_IDENTIFIER:
        return TFLITE
    if onnx_file.is_onnx(model):
        return ONNX
    raise ModelError(f"{name}: not a TFLite model (no 'TFL3' flatbuffer identifier) nor an ONNX model (no graph)")


def load(model: bytes | bytearray | str | Path, name: str = "model") -> tuple[bytes, str]:
    """(bytes, name for messages) of a model given as bytes or a path; its format is checked."""
    if not isinstance(model, (bytes, bytearray)):
        name = str(model)
        model = Path(model).read_bytes()
    model_format(bytes(model), name)
    return bytes(model), name


def metadata_span(model: bytes, name: str, label: str = "model") -> tuple[int, int] | None:
    """(start, end) of the named medtk document's bytes in the file, or None."""
    if model_format(model, label) == ONNX:
        return onnx_file.metadata_span(model, name, label)
    return flatbuffer.named_buffer_span(model, name, label)


def read_document(model: bytes | bytearray | str | Path, name: str) -> bytes | None:
    """The named medtk document's bytes (metadata JSON), or None when the model has none."""
    data, label = load(model)
    span = metadata_span(data, name, label)
    return None if span is None else data[span[0] : span[1]]


def embed_document(model: bytes, name: str, data: bytes) -> bytes:
    """The model with the named document holding `data`, replacing any earlier one."""
    if model_format(model) == ONNX:
        return onnx_file.embed(model, name, data)
    return flatbuffer.embed_named_buffer(model, name, data)


def content_sha256(model: bytes, name: str) -> str:
    """The older content checksum: a `.tflite`'s weight buffers; an `.onnx`'s bytes without medtk's metadata."""
    if model_format(model) == ONNX:
        return onnx_file.graph_sha256(model, name)
    return flatbuffer.weights_sha256(model)

"""The medtk metadata that travels inside every `.tflite` file, written and read without TensorFlow.

The flatbuffer's `metadata` field holds named buffers; medtk stores one, named `medtk`, with UTF-8
JSON (schema below). `weights_sha256` hashes every buffer except the metadata ones, so the runtime can
tell a model whose weights were changed after export from the one that was measured.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtk.errors import ModelError

METADATA_NAME = "medtk"
SCHEMA_VERSION = 2  # 2: positive_class, operating_point, calibration (version 1 files still read)
TFLITE_IDENTIFIER = b"TFL3"


@dataclass(frozen=True)
class ModelInput:
    size: int
    channels: int
    dtype: str  # "uint8" (int8 models) or "float32"
    value_range: tuple[float, float] = (0.0, 255.0)
    interpolation: str = "area-down/linear-up"
    preprocessing: str = ""


@dataclass(frozen=True)
class OperatingPoint:
    """The decision rule of a binary model: `positive_class` when its probability >= `threshold`."""

    rule: str  # how the threshold was chosen on validation data, e.g. "sensitivity:0.95"
    threshold: float


@dataclass(frozen=True)
class ModelMetadata:
    """What an integrator and the runtime need to use a model correctly (MONAI-bundle style)."""

    labels: tuple[str, ...]
    input: ModelInput
    variant: str = "float32"
    model_version: str = "0"
    outputs: dict[str, str] = field(
        default_factory=lambda: {
            "probs": "[1, K] class probabilities (softmax), in label order",
            "cam": "[1, h, w, K] class activation maps: class logits per feature-map cell",
        }
    )
    intended_use: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    positive_class: str | None = None  # binary models: the finding class every sensitivity is about
    operating_point: OperatingPoint | None = None  # binary models: None = argmax
    calibration: dict[str, float] = field(default_factory=dict)  # {"temperature": T} folded into the graph
    schema_version: int = SCHEMA_VERSION
    format: str = "medtk-model"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMetadata":
        if data.get("format") != "medtk-model":
            raise ModelError(f"metadata format is {data.get('format')!r}, expected 'medtk-model'")
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise ModelError(
                f"metadata schema_version {data['schema_version']} is newer than this medtk "
                f"understands ({SCHEMA_VERSION}); upgrade medtk"
            )
        inp = dict(data["input"])
        inp["value_range"] = tuple(inp.get("value_range", (0.0, 255.0)))
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["labels"] = tuple(data["labels"])
        fields["input"] = ModelInput(**inp)
        if data.get("operating_point") is not None:
            point = data["operating_point"]
            fields["operating_point"] = OperatingPoint(rule=str(point["rule"]), threshold=float(point["threshold"]))
        return cls(**fields)

    @property
    def positive_index(self) -> int | None:
        """Index of the positive class for a binary model that names one."""
        if len(self.labels) != 2 or self.positive_class not in self.labels:
            return None
        return self.labels.index(self.positive_class)


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def check_tflite_bytes(model: bytes, name: str) -> None:
    """Refuse anything that is not a TFLite flatbuffer before it reaches the interpreter."""
    if len(model) < 8 or model[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{name}: not a TFLite model (no 'TFL3' flatbuffer identifier)")


def weights_sha256(model: bytes) -> str:
    """sha256 over the model's buffers (weights and constants), skipping the metadata buffers."""
    schema = _schema()
    root = schema.Model.GetRootAsModel(model, 0)
    skip = {root.Metadata(i).Buffer() for i in range(root.MetadataLength())}
    digest = hashlib.sha256()
    for index in range(root.BuffersLength()):
        if index in skip:
            continue
        buffer = root.Buffers(index)
        if buffer.DataLength():
            digest.update(buffer.DataAsNumpy().tobytes())
        elif buffer.Size():  # data stored after the flatbuffer (models over 2 GB)
            digest.update(model[buffer.Offset() : buffer.Offset() + buffer.Size()])
    return digest.hexdigest()


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """Return the model with `metadata` (and the weights' sha256) embedded, replacing any earlier copy."""
    schema = _schema()
    import flatbuffers

    check_tflite_bytes(model, "model")
    metadata = _with_checksum(metadata, weights_sha256(model))
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    entries = [m for m in (tree.metadata or []) if _name(m.name) != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(tree.buffers) - 1
    tree.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def read_metadata(model: bytes | str | Path) -> ModelMetadata | None:
    """The embedded medtk metadata, or None for a TFLite model exported without it."""
    raw = read_raw_metadata(model)
    return None if raw is None else ModelMetadata.from_dict(raw)


def read_raw_metadata(model: bytes | str | Path) -> dict[str, Any] | None:
    name = "model"
    if not isinstance(model, (bytes, bytearray)):
        name = str(model)
        model = Path(model).read_bytes()
    check_tflite_bytes(model, name)
    schema = _schema()
    try:
        root = schema.Model.GetRootAsModel(model, 0)
        for i in range(root.MetadataLength()):
            entry = root.Metadata(i)
            if _name(entry.Name()) == METADATA_NAME:
                data = root.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
                return json.loads(data.decode("utf-8"))
    except (IndexError, ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{name}: corrupt TFLite flatbuffer or metadata ({error})") from None
    return None


def _with_checksum(metadata: ModelMetadata, checksum: str) -> ModelMetadata:
    from dataclasses import replace

    return replace(metadata, weights_sha256=checksum)


def _name(value: bytes | str | None) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")

"""The medtk metadata that travels inside every `.tflite` file, written and read without TensorFlow.

The flatbuffer's `metadata` field holds named buffers; medtk stores one, named `medtk`, with UTF-8
JSON (the dataclasses below). Its `seal` (schema 3) holds the digest of the whole file except the seal
itself, and an optional signature (integrity.py, signing.py), so the runtime refuses a model whose
weights, quantization parameters, graph or metadata changed after export. `weights_sha256` is the
older weights-only checksum: still written for older readers, checked only for files without a seal.
`intensity` records the intensity mapping training used and the kinds of images it saw (intensity.py);
`cam_geometry` where the CAM's cells sit on the input (geometry.py; absent: drawn as an even grid).
Reading and rewriting the flatbuffer itself is `flatbuffer.py`'s.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from medtk.errors import ModelError
from medtk.runtime import flatbuffer, integrity
from medtk.runtime.geometry import CellGeometry
from medtk.runtime.flatbuffer import weights_sha256
from medtk.runtime.intensity import MINMAX, Intensity
from medtk.variants import REFERENCE

__all__ = [
    "METADATA_NAME",
    "SCHEMA_VERSION",
    "Intensity",
    "ModelInput",
    "OperatingPoint",
    "ModelMetadata",
    "embed_metadata",
    "read_metadata",
    "read_raw_metadata",
    "weights_sha256",
]

METADATA_NAME = "medtk"
# 2: positive_class, operating_point, calibration; 3: seal (whole-file digest, optional signature) and
# intensity (mapping + what training saw). Versions 1 and 2 still read (weights-only checksum, min-max).
SCHEMA_VERSION = 3


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
    variant: str = REFERENCE  # a name of the `medtk.variants` table
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
    intensity: Intensity = field(default_factory=Intensity)  # how stored pixels become 0..255 (intensity.py)
    cam_geometry: CellGeometry | None = None  # where the CAM's cells sit on the input (geometry.py); None: even grid
    seal: str = ""  # integrity.py: the whole-file digest and optional signature, filled in place at export
    schema_version: int = SCHEMA_VERSION
    format: str = "medtk-model"

    def to_json(self) -> str:
        data = asdict(self)
        data["intensity"] = self.intensity.to_dict()
        data["cam_geometry"] = self.cam_geometry.to_dict() if self.cam_geometry is not None else None
        return json.dumps(data, indent=1, sort_keys=True)

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
        if "intensity" in data:
            fields["intensity"] = Intensity.from_dict(data["intensity"])
        elif int(data.get("schema_version", 1)) < 3:  # trained with per-image min-max (intensity.py)
            fields["intensity"] = Intensity(mapping=MINMAX)
        if data.get("cam_geometry") is not None:
            fields["cam_geometry"] = CellGeometry.from_dict(data["cam_geometry"])
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


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """Return the model with `metadata` embedded and sealed (integrity.py), replacing any earlier copy.

    The result is unsigned; `medtk.runtime.signing.sign_model` adds a signature without moving a byte.
    """
    flatbuffer.check_identifier(model, "model")
    weights = weights_sha256(model)

    def render(placeholder: str) -> bytes:
        sealed = replace(metadata, weights_sha256=weights, seal=placeholder, schema_version=SCHEMA_VERSION)
        return sealed.to_json().encode("utf-8")

    return integrity.seal(model, METADATA_NAME, render)


def read_metadata(model: bytes | str | Path) -> ModelMetadata | None:
    """The embedded medtk metadata, or None for a TFLite model exported without it."""
    raw = read_raw_metadata(model)
    return None if raw is None else ModelMetadata.from_dict(raw)


def read_raw_metadata(model: bytes | str | Path) -> dict[str, Any] | None:
    """The embedded metadata as parsed JSON, or None; a corrupt buffer is a one-line `ModelError`."""
    data = flatbuffer.read_named_buffer(model, METADATA_NAME)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
        name = "model" if isinstance(model, (bytes, bytearray)) else str(model)
        raise ModelError(f"{name}: corrupt TFLite flatbuffer or metadata ({error})") from None

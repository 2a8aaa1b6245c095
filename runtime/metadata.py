"""The medtk metadata that travels inside every `.tflite` file, written and read without TensorFlow.

The flatbuffer's `metadata` field holds named buffers; medtk stores one, named `medtk`, with UTF-8
JSON (the dataclasses below). Its `seal` (schema 3) holds the digest of the whole file except the seal
itself, and an optional signature (integrity.py, signing.py), so the runtime refuses a model whose
weights, quantization parameters, graph or metadata changed after export. `weights_sha256` is the
older weights-only checksum: still written for older readers, checked only for files without a seal.
`intensity` records the intensity mapping training used and the kinds of images it saw (intensity.py);
`cam_geometry` where the CAM's cells sit on the input (geometry.py; absent: drawn as an even grid).
`calibration` the temperature folded into the graph and why (training's decision, the same for every
variant), `quality_gate` how compress judged this variant against float32 (absent: not gated, i.e. the
float32 reference, or exported before it was recorded), so a variant that failed says so wherever it goes.
Reading and rewriting the flatbuffer itself is `flatbuffer.py`'s.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from medtk.errors import ModelError
from medtk.runtime import container, integrity
from medtk.runtime.geometry import CellGeometry
from medtk.runtime.imaging import INTERPOLATION_RULE, LEGACY_INTERPOLATION_RULE
from medtk.runtime.flatbuffer import weights_sha256
from medtk.runtime.intensity import MINMAX, Intensity
from medtk.variants import REFERENCE

__all__ = [
    "METADATA_NAME",
    "SCHEMA_VERSION",
    "Intensity",
    "ModelInput",
    "OperatingPoint",
    "ModelCalibration",
    "GateFailure",
    "QualityGate",
    "ModelMetadata",
    "embed_metadata",
    "read_metadata",
    "read_raw_metadata",
    "weights_sha256",
]

METADATA_NAME = "medtk"
# 2: positive_class, operating_point, calibration; 3: seal (whole-file digest, optional signature) and
# intensity (mapping + what training saw). Versions 1 and 2 still read (weights-only checksum, min-max).
# Keys added within 3 (calibration's applied/reason/fitted_temperature, quality_gate) are optional: older
# readers ignore them and files without them still read, so they need no new version that older readers refuse.
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class ModelInput:
    size: int
    channels: int
    dtype: str  # "uint8" (int8 models) or "float32"
    value_range: tuple[float, float] = (0.0, 255.0)
    interpolation: str = INTERPOLATION_RULE  # how it was resized (imaging.RESIZE_RULES)
    preprocessing: str = ""


@dataclass(frozen=True)
class OperatingPoint:
    """The decision rule of a binary model: `positive_class` when its probability >= `threshold`."""

    rule: str  # how the threshold was chosen on validation data, e.g. "sensitivity:0.95"
    threshold: float


@dataclass(frozen=True)
class ModelCalibration:
    """The temperature folded into the `cam` layer at training time, and why (`decide_temperature`)."""

    temperature: float = 1.0  # what the graph carries; 1.0 = uncalibrated
    applied: bool | None = None  # None: exported before the decision was recorded
    reason: str = ""  # why applied or not, e.g. "held-out NLL did not improve beyond its standard error"
    fitted_temperature: float | None = None  # what validation fitted, applied or not


@dataclass(frozen=True)
class GateFailure:
    """One compress gate this variant failed. `gate` names its limit: a `max_*` gate fails when the
    measured value is above the limit, a `min_*` gate when it is below; `measured` None: not measurable."""

    gate: str  # e.g. "max_auc_drop" (the option --max-auc-drop)
    measured: float | None
    limit: float

    def describe(self) -> str:
        if self.measured is None:
            return f"{self.gate} not measurable (limit {self.limit:g})"
        return f"{self.gate} {self.measured:.4g} {'<' if self.gate.startswith('min_') else '>'} {self.limit:g}"


@dataclass(frozen=True)
class QualityGate:
    """How `medtk compress` judged this variant against float32, sealed into the file with it."""

    passed: bool
    failures: tuple[GateFailure, ...] = ()

    def describe(self) -> str:
        """One line: "passed", or "FAILED: max_auc_drop 0.07 > 0.02; ..."."""
        return "passed" if self.passed else "FAILED: " + "; ".join(f.describe() for f in self.failures)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QualityGate":
        failures = tuple(
            GateFailure(gate=str(f["gate"]), measured=None if f.get("measured") is None else float(f["measured"]),
                        limit=float(f["limit"]))
            for f in data.get("failures", ())
        )
        return cls(passed=bool(data["passed"]), failures=failures)


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
    calibration: ModelCalibration | None = None  # the temperature folded into the graph, and why; None: schema 1
    intensity: Intensity = field(default_factory=Intensity)  # how stored pixels become 0..255 (intensity.py)
    cam_geometry: CellGeometry | None = None  # where the CAM's cells sit on the input (geometry.py); None: even grid
    quality_gate: QualityGate | None = None  # compress's gates for this variant; None: not gated (float32) or older
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
        inp.setdefault("interpolation", LEGACY_INTERPOLATION_RULE)  # written before the field: INTER_LINEAR
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
        calibration = data.get("calibration")
        fields["calibration"] = _calibration(calibration) if calibration else None
        if data.get("quality_gate") is not None:
            fields["quality_gate"] = QualityGate.from_dict(data["quality_gate"])
        return cls(**fields)

    @property
    def failed_gate(self) -> bool:
        """True when compress's quality gate failed this variant (never for ungated or older files)."""
        return self.quality_gate is not None and not self.quality_gate.passed

    @property
    def positive_index(self) -> int | None:
        """Index of the positive class for a binary model that names one."""
        if len(self.labels) != 2 or self.positive_class not in self.labels:
            return None
        return self.labels.index(self.positive_class)


def _calibration(data: dict[str, Any]) -> ModelCalibration:
    fitted = data.get("fitted_temperature")
    applied = data.get("applied")
    return ModelCalibration(temperature=float(data.get("temperature", 1.0)),
                            applied=None if applied is None else bool(applied), reason=str(data.get("reason", "")),
                            fitted_temperature=None if fitted is None else float(fitted))


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """Return the model with `metadata` embedded and sealed (integrity.py), replacing any earlier copy.

    The result is unsigned; `medtk.runtime.signing.sign_model` adds a signature without moving a byte.
    """
    container.model_format(model)
    weights = container.content_sha256(model, METADATA_NAME)

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
    data = container.read_document(model, METADATA_NAME)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
        name = "model" if isinstance(model, (bytes, bytearray)) else str(model)
        raise ModelError(f"{name}: corrupt TFLite flatbuffer or metadata ({error})") from None

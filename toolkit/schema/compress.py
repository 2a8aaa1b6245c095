"""RUN/compress.json (`medtk-compress/1`): every exported variant, measured through the runtime.

Deltas are against the float32 TFLite file; `recommended` names the variant to deploy (the fastest on
this host, by `latency_ms`, that passes every gate and runs on the target), or None when none passes,
and `not_recommended` says why each other variant was not chosen. `accuracy_control` records how
`int8_mixed` was searched (on validation only), `onnx_accuracy_control` how `onnx_int8_mixed` was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from medtk.jsondoc import Document
from medtk.schema.metrics import BootstrapIntervals, CalibrationDecision, OperatingPointMetrics


@dataclass(frozen=True)
class Headline:
    """AUC and argmax accuracy; for binary models the rates at the variant's own operating point."""

    auc: float | None
    accuracy: float | None
    sensitivity: float | None
    specificity: float | None
    threshold: float | None = None  # chosen on validation through this variant's interpreter
    ppv: float | None = None
    npv: float | None = None
    ece: float | None = None  # top-label expected calibration error (15 bins) of the deployed probabilities


@dataclass(frozen=True)
class CamAgreement:
    correlation: float | None  # mean per-image Pearson r with the float32 CAM
    peak_match: float | None  # share of images whose peak cell is the float32 one
    peak_within_one: float | None  # ... or a neighbour of it
    mean_peak_shift: float | None = None  # mean distance (cells) from the float32 peak cell; None before it was measured


@dataclass(frozen=True)
class VariantResult:
    name: str
    path: str  # relative to the run folder
    status: str  # "passed" or "failed"
    input_dtype: str
    size_bytes: int
    gzip_bytes: int
    sparsity: float
    test: Headline
    delta_auc: float | None = None
    delta_accuracy: float | None = None
    delta_sensitivity: float | None = None  # at each variant's own operating point
    cam_agreement: CamAgreement | None = None
    val: Headline | None = None  # validation numbers (they choose the threshold; test only reports)
    operating_point: OperatingPointMetrics | None = None  # test, at the threshold chosen on validation
    ci: BootstrapIntervals | None = None  # test, 95% stratified bootstrap
    float_layers: tuple[str, ...] = ()  # int8 ops kept float (output tensor names), besides the final softmax
    temperature: float | None = None  # what the file carries: training's temperature x this variant's own
    calibration: CalibrationDecision | None = None  # the temperature rule on this variant's own validation outputs
    latency_ms: float | None = None  # p50 on the compress host through its own engine (`CompressReport.latency`)
    latency_range_ms: tuple[float, float] | None = None  # smallest and largest round median: the spread

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class KerasReference:
    auc: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Reference:
    variant: str
    measured: str
    test: Headline
    test_images: int
    keras_test: KerasReference | None = None


@dataclass(frozen=True)
class Gate:
    max_auc_drop: float
    passed: bool
    failures: tuple[str, ...] = ()
    min_cam_correlation: float | None = None  # every variant's mean CAM correlation with float32 (test)
    max_cam_peak_shift: float | None = None  # every variant's mean CAM peak shift from float32, cells (test)
    max_ece_increase: float | None = None  # every variant's calibration error (ECE) above float32's (test)


@dataclass(frozen=True)
class KeptFloat:
    """One int8 op that `int8_mixed` computes in float, and why (compress/accuracy_control.py)."""

    tensor: str  # the op's output tensor
    op: str  # its type: a TFLite operator (CONV_2D), or an ONNX op type (Conv) for onnx_int8_mixed
    noise_rank: int | None  # its place among the ops by int8 noise (rmse / std) on the held-out training images
    noise: float | None  # (both None where the engine gives no per-op error: ONNX Runtime)
    held_out_disagreement_alone: float | None  # disagreement with float32 on the held-out images with only this op
    # float (None when it was kept float as part of the network's tail, never measured alone)
    held_out_disagreement_full: float  # ... with every op int8 (full int8), for comparison
    reason: str
    held_out_disagreement_together: float | None = None  # ... with the whole tail it belongs to float


@dataclass(frozen=True)
class ValidationCam:
    """A model's CAM agreement with float32 on the validation images (what accuracy control decides the
    CAM gate on): each mean with the end of its 95% interval over images that the gate would fail first."""

    correlation: float | None
    correlation_low: float | None
    peak_shift: float | None
    peak_shift_high: float | None

    def describe(self) -> str:
        """'CAM r R (95% low L), peak shift S cells (95% high H)', for the table, the report and the log."""
        parts = []
        if self.correlation is not None:
            parts.append(f"CAM r {self.correlation:.3f} (95% low {self.correlation_low:.3f})")
        if self.peak_shift is not None:
            parts.append(f"peak shift {self.peak_shift:.2f} cells (95% high {self.peak_shift_high:.2f})")
        return ", ".join(parts) or "CAM agreement undefined"


@dataclass(frozen=True)
class AccuracyControl:
    """How `int8_mixed` was found: ops ranked on held-out training images by agreement with float32, kept
    float until the upper 95% bound of the validation AUC drop (paired bootstrap) was within `max_val_drop`
    and the validation CAM met the CAM gate at the unfavourable end of its 95% interval."""

    max_val_drop: float
    max_float_layers: int
    val_reference: float  # float32 TFLite validation AUC
    full_int8_val: float | None  # full int8 (softmax float) validation AUC
    val: float | None  # the chosen model's validation AUC
    within_budget: bool
    ranking: str  # "none" (full int8 was within budget), "held-out agreement" or "network tail"
    float_layers: tuple[str, ...] = ()
    models_tried: int = 0
    held_out_images: int = 0  # training images (not calibration images) the ops were ranked on
    full_int8_val_drop: tuple[float, float, float] | None = None  # point, 95% low, 95% high
    val_drop: tuple[float, float, float] | None = None  # the chosen model's
    kept_float: tuple[KeptFloat, ...] = ()
    full_int8_val_cam: ValidationCam | None = None
    val_cam: ValidationCam | None = None  # the chosen model's


@dataclass(frozen=True)
class CompressionSteps:
    """What pruning and QAT did (empty when neither ran)."""

    batch_size: int | None = None
    target_sparsity: float | None = None
    sparsity_after_pruning: float | None = None
    sparsity_after_qat: float | None = None
    schedule: dict[str, Any] | None = None


@dataclass(frozen=True)
class LatencySetting:
    """How compress timed the variants (compress/latency.py): on which host, how many threads and calls."""

    threads: int
    rounds: int
    runs_per_round: int
    host: str  # the CPU's model, usable cores and vector extensions (`medtk.devices.cpu`)
    measured: str


@dataclass(frozen=True)
class CompressReport(Document):
    SCHEMA: ClassVar[str] = "medtk-compress/1"

    reference: Reference
    variants: tuple[VariantResult, ...]
    gate: Gate
    options: dict[str, Any]
    compression: CompressionSteps = field(default_factory=CompressionSteps)
    calibration_images: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    recommended: str | None = None  # the `.tflite` to deploy (LiteRT)
    # the variant to deploy per file format ({"tflite": ..., "onnx": ...}), each chosen among its own format
    recommended_by_format: dict[str, str | None] = field(default_factory=dict)
    not_recommended: dict[str, str] = field(default_factory=dict)  # variant -> why it was not chosen
    recommendation: str = ""  # how `recommended` was chosen (the rule, the target, what decided)
    accuracy_control: AccuracyControl | None = None  # int8_mixed's search
    onnx_accuracy_control: AccuracyControl | None = None  # onnx_int8_mixed's, against onnx_float32 (tail only)
    latency: LatencySetting | None = None  # how each variant's `latency_ms` was measured

    def variant(self, name: str) -> VariantResult | None:
        return next((entry for entry in self.variants if entry.name == name), None)

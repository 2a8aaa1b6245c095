"""RUN/training.json (`medtk-training/1`): how the training went and on what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from medtk.jsondoc import Document
from medtk.schema.metrics import CalibrationDecision


@dataclass(frozen=True)
class PlacementSummary:
    """Where training ran: the distribution strategy, its devices and the numeric precision."""

    strategy: str
    replicas: int
    devices: tuple[str, ...]
    mixed_precision: str
    xla: bool


@dataclass(frozen=True)
class PreciseBatchNormSummary:
    """The BatchNorm statistics recomputed over the training data after training."""

    layers: int
    images: int


@dataclass(frozen=True)
class InputSummary:
    """How training read its images, why, and from which prepared dataset (path + manifest sha256)."""

    pipeline: str  # "memory" or "stream"
    reason: str
    prepared: str | None = None
    manifest_sha256: str | None = None


@dataclass(frozen=True)
class ScheduleSummary:
    """How long the last phase was planned and what watched validation (`medtk.train.schedule`)."""

    steps_per_epoch: int
    epochs: int
    floor_epochs: int
    min_steps: int
    patience: int
    lr_patience: int
    lr_start_epoch: int
    min_delta: float
    smoothing: float


@dataclass(frozen=True)
class TrainingSummary(Document):
    SCHEMA: ClassVar[str] = "medtk-training/1"

    best_val_auc: float | None
    epochs_run: int
    seconds: float
    placement: PlacementSummary | None = None
    versions: dict[str, str] = field(default_factory=dict)
    temperature: float = 1.0  # calibration folded into the saved model (1.0 = none)
    calibration: CalibrationDecision | None = None  # why that temperature (None: written before the decision)
    precise_batchnorm: PreciseBatchNormSummary | None = None
    schedule: ScheduleSummary | None = None  # None: written before issue 22
    input: InputSummary | None = None  # None: written before issue 24
    warnings: tuple[str, ...] = ()  # about the plan: a run too short for its floor, too few images from scratch

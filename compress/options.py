"""The options of `medtk compress` and their checks, validated before anything is loaded or created."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from medtk.errors import ConfigError
from medtk.variants import compressed_variant

# How far the measured kernel sparsity may be from --prune-sparsity: pruning raises beyond it, and after
# QAT the pruned variant fails the gate.
SPARSITY_TOLERANCE = 0.02


@dataclass(frozen=True)
class CompressOptions:
    """Every default of `medtk compress` lives here; CLI flags that are not given do not override them."""

    int8: bool = False
    prune: bool = True
    qat: bool = True
    prune_sparsity: float = 0.5
    prune_epochs: int = 2
    prune_lr: float = 1e-4
    qat_epochs: int = 2
    qat_lr: float = 1e-5
    batch_size: int | None = None  # None = the run's training batch size
    calibration: int = 300
    held_out: int = 500  # training images (not calibration images) accuracy control ranks ops on
    max_auc_drop: float = 0.01
    max_sensitivity_drop: float | None = None  # binary: largest test-sensitivity loss at the operating point
    min_cam_correlation: float | None = 0.9  # every variant's mean test CAM correlation with float32; None = not gated
    max_cam_peak_shift: float | None = 0.5  # every variant's mean test CAM peak shift from float32 (cells); None = not gated
    max_ece_increase: float | None = 0.05  # every variant's test ECE at most this above float32's; None = not gated
    accuracy_control: bool = True  # int8 beyond the validation budget -> also int8_mixed (layers kept float)
    max_val_drop: float = 0.005  # accuracy control's budget: the upper 95% bound of the validation AUC drop
    max_float_layers: int = 16  # accuracy control keeps at most this many int8 ops float (ResNet50's last stage: 13)
    distill: bool = True  # pruning/QAT fine-tuning also learns the float model's probabilities and CAMs
    onnx: bool = True  # also onnx_float32 (and with int8, onnx_int8), measured through ONNX Runtime
    positive_class: str | None = None  # None = the run's finding class
    num_threads: int | None = None  # interpreter threads while evaluating
    device: str | None = None  # the target's device profile: recommend only what its accelerator runs

    @classmethod
    def given(cls, **values: Any) -> "CompressOptions":
        """The defaults, overridden only by the values that were given (not None)."""
        return cls(**{key: value for key, value in values.items() if value is not None})

    def compressed_variant(self) -> str | None:
        """Name of the pruned and/or QAT variant, None when neither step runs."""
        return compressed_variant(self.prune, self.qat) if self.int8 else None

    def check(self) -> None:
        if self.device is not None:
            from medtk.devices import load_profile

            load_profile(self.device)  # an unknown name lists the close matches
        for option in fields(self):
            value = getattr(self, option.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"--{option.name.replace('_', '-')} must be a finite number, got {value}")
        if not 0.0 < self.prune_sparsity < 1.0:
            raise ConfigError(f"--prune-sparsity must be between 0 and 1 (exclusive), got {self.prune_sparsity}")
        if self.max_float_layers < 0:
            raise ConfigError(f"--max-float-layers must be 0 or more, got {self.max_float_layers}")
        if self.min_cam_correlation is not None and not -1 <= self.min_cam_correlation <= 1:
            raise ConfigError(f"--min-cam-correlation must be between -1 and 1, got {self.min_cam_correlation}")
        if self.max_cam_peak_shift is not None and self.max_cam_peak_shift < 0:
            raise ConfigError(f"--max-cam-peak-shift must be 0 or more (cells), got {self.max_cam_peak_shift}")
        if self.max_ece_increase is not None and self.max_ece_increase < 0:
            raise ConfigError(f"--max-ece-increase must be 0 or more, got {self.max_ece_increase}")
        for flag, value in (("--prune-epochs", self.prune_epochs), ("--calibration", self.calibration),
                            ("--held-out", self.held_out)):
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        if self.qat_epochs < 0:
            raise ConfigError(f"--qat-epochs must be 0 or more, got {self.qat_epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        for flag, value in (("--prune-lr", self.prune_lr), ("--qat-lr", self.qat_lr)):
            if not value > 0:
                raise ConfigError(f"{flag} must be positive, got {value}")
        for flag, value in (("--max-auc-drop", self.max_auc_drop), ("--max-sensitivity-drop", self.max_sensitivity_drop),
                            ("--max-val-drop", self.max_val_drop)):
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"{flag} must be between 0 and 1, got {value}")


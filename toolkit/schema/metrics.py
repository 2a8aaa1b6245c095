"""RUN/metrics.json (`medtk-metrics/1`): the trained float model's metrics per split.

Threshold-free numbers (AUC) sit next to the numbers at the operating point. For two classes every
sensitivity, specificity, PPV and NPV is about `positive_class`; for more classes they are macro
averages at argmax and `positive_class` is None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from medtk.jsondoc import Document

Interval = tuple[float, float]


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int
    auc: float | None


@dataclass(frozen=True)
class OperatingPointMetrics:
    """A chosen operating point and what it gives on a split: the decision threshold chosen on validation
    by `rule` (`medtk.clinical.operating_point`), and the rates of `score >= threshold` on this split.

    What a model file carries of it (rule and threshold) is the runtime's `OperatingPoint`
    (`medtk.runtime.metadata`).
    """

    rule: str
    threshold: float
    sensitivity: float | None
    specificity: float | None
    ppv: float | None
    npv: float | None
    met: bool | None = None  # on the split it was chosen on: whether the rule's target was reached (see `note`)
    note: str = ""
    accuracy: float | None = None  # of the thresholded decision
    tp: int | None = None
    fp: int | None = None
    tn: int | None = None
    fn: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BootstrapIntervals:
    """Percentile intervals [lo, hi]; None where the metric is undefined on this data (`medtk.clinical.bootstrap`)."""

    auc: Interval | None
    sensitivity: Interval | None
    specificity: Interval | None
    ppv: Interval | None
    npv: Interval | None
    threshold: float | None  # the decision `score >= threshold` the rates are about
    level: float
    resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: intervals as [lo, hi] lists (None stays None, never NaN)."""
        def pair(value: Interval | None) -> list[float] | None:
            return None if value is None else [value[0], value[1]]

        return {
            "auc": pair(self.auc), "sensitivity": pair(self.sensitivity), "specificity": pair(self.specificity),
            "ppv": pair(self.ppv), "npv": pair(self.npv), "threshold": self.threshold,
            "level": self.level, "resamples": self.resamples, "seed": self.seed,
        }


@dataclass(frozen=True)
class CalibrationDecision:
    """Whether the temperature fitted on validation ships (`medtk.clinical.calibration.decide_temperature`)."""

    applied: bool
    temperature: float  # what ships: the fitted one, or 1.0
    fitted_temperature: float | None
    reason: str


@dataclass(frozen=True)
class Calibration:
    """Temperature fitted on validation; ECE and Brier on the evaluated split without and with it
    (`medtk.clinical.calibration`)."""

    temperature: float  # the one applied (folded into the model); 1.0 when not applied
    ece_before: float
    ece_after: float
    brier_before: float
    brier_after: float
    applied: bool = True  # False: held-out evidence did not show the fitted temperature helps (see `reason`)
    reason: str = ""  # why it was applied or not
    fitted_temperature: float | None = None  # what validation fitted, applied or not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SplitMetrics:
    n: int
    auc: float | None
    accuracy: float  # argmax
    balanced_accuracy: float | None
    f1: float
    confusion_matrix: tuple[tuple[int, ...], ...]  # rows: true class, columns: decided class
    per_class: dict[str, ClassMetrics]
    sensitivity: float | None  # binary: at the operating point when there is one, else argmax
    specificity: float | None
    sensitivity_argmax: float | None = None  # binary: at argmax (threshold 0.5), for comparison
    specificity_argmax: float | None = None
    positive_class: str | None = None
    operating_point: OperatingPointMetrics | None = None
    ci: BootstrapIntervals | None = None  # test: 95% stratified bootstrap, at the operating point
    calibration: Calibration | None = None  # temperature fitted on validation; ECE/Brier on this split


@dataclass(frozen=True)
class Metrics(Document):
    SCHEMA: ClassVar[str] = "medtk-metrics/1"

    class_names: tuple[str, ...]
    source: str
    val: SplitMetrics | None = None
    test: SplitMetrics | None = None

    def split(self, name: str) -> SplitMetrics | None:
        return {"val": self.val, "test": self.test}.get(name)

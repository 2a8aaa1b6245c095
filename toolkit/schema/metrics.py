"""RUN/metrics.json (`medtk-metrics/1`): the trained float model's metrics per split.

Threshold-free numbers (AUC) sit next to the numbers at the operating point. For two classes every
sensitivity, specificity, PPV and NPV is about `positive_class`; for more classes they are macro
averages at argmax and `positive_class` is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from medtk.bootstrap import BootstrapIntervals
from medtk.calibration import Calibration
from medtk.jsondoc import Document


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int
    auc: float | None


@dataclass(frozen=True)
class OperatingPointMetrics:
    """The decision threshold chosen on validation by `rule`, and what it gives on this split."""

    rule: str
    threshold: float
    sensitivity: float | None
    specificity: float | None
    ppv: float | None
    npv: float | None
    met: bool | None = None  # validation only: whether the rule's target was reached (see `note`)
    note: str = ""
    accuracy: float | None = None  # of the thresholded decision
    tp: int | None = None
    fp: int | None = None
    tn: int | None = None
    fn: int | None = None


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

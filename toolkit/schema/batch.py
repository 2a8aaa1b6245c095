"""RESULTS/_job.json (`medtk-batch/1`): what a batch job's rows were made by and from, and how far it got.

`medtk predict MODEL --data SRC --out RESULTS` writes it before the first row (a rerun must be the same
model on the same source: that is what makes resuming safe) and again, `complete`, at the end;
`medtk eval RESULTS` reads the model's labels, finding and operating point from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from medtk.jsondoc import Document

PROB_PREFIX = "prob_"


@dataclass(frozen=True)
class ModelInfo:
    """What every row says about the model, and what `medtk eval` needs to read the rows back."""

    sha256: str  # of the model file's bytes (`sha256sum` gives the same)
    variant: str
    labels: tuple[str, ...]
    positive_class: str | None = None
    rule: str | None = None  # the operating point's rule, e.g. "youden"
    threshold: float | None = None
    temperature: float | None = None  # folded into the model at training (its calibration record), if any
    calibration_applied: bool | None = None
    calibration_reason: str = ""

    @classmethod
    def of(cls, classifier) -> "ModelInfo":
        """From a loaded `medtk.runtime.Classifier` (its verified bytes and sealed metadata)."""
        metadata = classifier.metadata
        point, calibration = metadata.operating_point, metadata.calibration
        return cls(
            sha256=classifier.file_sha256,
            variant=metadata.variant,
            labels=tuple(classifier.labels),
            positive_class=metadata.positive_class,
            rule=point.rule if point is not None else None,
            threshold=point.threshold if point is not None else None,
            temperature=calibration.temperature if calibration is not None else None,
            calibration_applied=calibration.applied if calibration is not None else None,
            calibration_reason=calibration.reason if calibration is not None else "",
        )

    def columns(self) -> list[str]:
        return ["source_id", "truth", "label", "positive", *self.prob_columns(), "threshold", "warnings",
                "error", "model_sha256", "variant"]

    def prob_columns(self) -> list[str]:
        return [PROB_PREFIX + label for label in self.labels]


@dataclass(frozen=True)
class BatchJob(Document):
    SCHEMA: ClassVar[str] = "medtk-batch/1"

    model: ModelInfo
    model_path: str
    source: str  # the --data argument as given
    labelled: bool
    expected: int | None  # items in the source, when known
    complete: bool = False
    rows: int | None = None  # when complete
    errors: int | None = None  # rows with an error, when complete

"""The result of one prediction: what an integrator reads (label, probabilities, CAM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Decimal places of the probabilities in medtk's JSON answers (`medtk predict --json`, `medtk serve`).
JSON_DIGITS = 6


@dataclass(frozen=True, eq=False)
class Prediction:
    """One image's result. Arrays are read-only so a shared result cannot be changed behind a caller.

    `cam` is the predicted class's map, float32 in [0, 1] at the input image's size; `raw_cam` is the
    model's [h, w, K] per-cell class logits (mean over cells = the logits behind `probabilities`).
    `Classifier.predict` makes it; `to_dict` is its JSON form::

        >>> from medtk.runtime import Classifier
        >>> prediction = Classifier("model_int8.tflite", num_threads=1).predict("chest.png")
        >>> round(sum(prediction.probabilities.values()), 3)
        1.0
        >>> 0.0 <= float(prediction.cam.min()) <= float(prediction.cam.max()) <= 1.0
        True
        >>> sorted(prediction.to_dict(digits=6))
        ['cam_shape', 'class_index', 'label', 'positive', 'probabilities', 'source', 'threshold', 'warnings']

    Raises no `medtk.errors` type of its own (the errors are `Classifier.predict`'s). It is frozen:
    assigning a field raises `dataclasses.FrozenInstanceError`, writing into `cam` or `raw_cam` a
    numpy `ValueError`.
    """

    label: str
    class_index: int
    probabilities: dict[str, float]
    cam: np.ndarray = field(repr=False)
    raw_cam: np.ndarray = field(repr=False)
    source: str = "array"
    threshold: float | None = None  # binary models with an operating point: the positive class's threshold
    positive: bool | None = None  # binary models: is the finding (the positive class) present?
    warnings: tuple[str, ...] = ()  # input that differs from what the model was trained on, etc.

    def __post_init__(self) -> None:
        self.cam.setflags(write=False)
        self.raw_cam.setflags(write=False)

    def to_dict(self, digits: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (without the maps): the one JSON form of a prediction.

        `digits` rounds the probabilities (`medtk predict --json` uses `JSON_DIGITS`); None keeps them whole.
        """
        probabilities = {label: p if digits is None else round(p, digits) for label, p in self.probabilities.items()}
        return {
            "source": self.source,
            "label": self.label,
            "class_index": self.class_index,
            "probabilities": probabilities,
            "threshold": self.threshold,
            "positive": self.positive,
            "warnings": list(self.warnings),
            "cam_shape": list(self.cam.shape),
        }

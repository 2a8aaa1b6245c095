"""A loaded source before splitting: every item with its label, id and loader, in one flat list.

Sources return a `Catalog`; `load_dataset` then checks it, splits it and turns it into a `Dataset`.
Checking before splitting lets a saved split file be matched against exactly the usable items.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Catalog:
    """All items of a source; `given_split` holds each item's split index (0/1/2) if the source has one."""

    source: str
    class_names: tuple[str, ...]
    ids: list[str]
    labels: np.ndarray  # int64
    load: Callable[[int], np.ndarray]
    patient_ids: list[str] | None = None
    given_split: np.ndarray | None = None
    masks: Callable[[int], np.ndarray] | None = None
    files: list[Path] | None = None  # files to check by decoding (None: in-memory arrays, checked at load)
    shapes: list[str] | None = None  # decoded image shape per item, e.g. "28x28" or "64x64x3"
    finding: str | None = None  # binary sources that know it: the class a positive result means
    intensity: dict | None = None  # a prepared dataset's record of its source's kinds of image (Intensity.to_dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> Catalog:
        """The items at `keep` (global indices), loaders re-indexed."""
        keep = np.asarray(keep, dtype=np.int64)
        picked = [int(i) for i in keep]
        return replace(
            self,
            ids=[self.ids[i] for i in picked],
            labels=self.labels[keep],
            load=_reindex(self.load, keep),
            patient_ids=None if self.patient_ids is None else [self.patient_ids[i] for i in picked],
            given_split=None if self.given_split is None else self.given_split[keep],
            masks=None if self.masks is None else _reindex(self.masks, keep),
            files=None if self.files is None else [self.files[i] for i in picked],
            shapes=None if self.shapes is None else [self.shapes[i] for i in picked],
        )

    def present_classes(self) -> list[str]:
        return [self.class_names[k] for k in np.unique(self.labels)]


def _reindex(function: Callable[[int], np.ndarray], keep: np.ndarray) -> Callable[[int], np.ndarray]:
    return lambda index: function(int(keep[index]))


def shape_name(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(n)) for n in shape)

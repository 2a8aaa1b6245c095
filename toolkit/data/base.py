"""What every data source returns: labelled images split into train/val/test, and what was skipped.

Images are decoded lazily by index (`Split.load(i)`), so a folder of ten thousand DICOM files is not
read twice; `medtk.runtime.imaging` does the decoding, so training and the device see the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Skipped:
    """A file that could not be used, and why (the run goes on without it)."""

    item: str
    reason: str


@dataclass
class Split:
    """One split: a loader per index, integer labels, and a stable id per item (path or 'train[12]')."""

    ids: list[str]
    labels: np.ndarray  # int64, values in range(len(class_names))
    load: Callable[[int], np.ndarray]  # index -> decoded uint8 image (HxW or HxWx3)
    patient_ids: list[str] | None = None
    masks: Callable[[int], np.ndarray] | None = None  # index -> lesion mask (synthetic data only)
    files: list[Path] | None = None  # each item's file (folder and CSV sources): prepare notices them change

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, index: int) -> np.ndarray:
        return self.load(index)


@dataclass
class Dataset:
    """A data source after loading: class names in label order, the three splits, skipped files."""

    source: str
    class_names: tuple[str, ...]
    splits: dict[str, Split]
    skipped: list[Skipped] = field(default_factory=list)
    split_origin: str = "given"  # "given" (the source's own split) or "stratified" / "grouped" (medtk's)
    # or "file" (a saved split.csv)
    image_shapes: dict[str, int] = field(default_factory=dict)  # decoded shape ("28x28") -> item count
    finding: str | None = None  # binary sources that know it (MedMNIST catalogue, synthetic): the finding class
    intensity: object | None = None  # medtk.runtime.intensity.Intensity: the kinds of images the source holds

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {c: int((split.labels == i).sum()) for i, c in enumerate(self.class_names)}
            for name, split in self.splits.items()
        }

"""RUN/data.json (`medtk-data/1`): what the run was trained on; counts, never patient identifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from medtk.jsondoc import Document


@dataclass(frozen=True)
class SkippedFile:
    item: str
    reason: str


@dataclass(frozen=True)
class ImageSummary:
    dtype: str
    shapes: dict[str, int]  # decoded shape ("28x28") -> item count


@dataclass(frozen=True)
class DataSummary(Document):
    SCHEMA: ClassVar[str] = "medtk-data/1"

    source: str
    classes: tuple[str, ...]
    split_origin: str  # "given", "stratified", "grouped" or "file"
    sizes: dict[str, int]
    counts: dict[str, dict[str, int]]
    skipped: tuple[SkippedFile, ...] = ()
    images: ImageSummary = field(default_factory=lambda: ImageSummary(dtype="uint8", shapes={}))
    patients: dict[str, int] | None = None  # how many per split, never who
    intensity: dict[str, Any] | None = None  # bit depths, photometric interpretations, modalities seen

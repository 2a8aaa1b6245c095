"""RUN/localization.json (`medtk-localization/1`): how well each explanation points at known lesions.

One entry per explanation method on the Keras model (`kind` "explanation": the CAM, Grad-CAM and
Grad-CAM++ on a named layer) and per exported variant's in-graph CAM run through `medtk.runtime`
(`kind` "export"), each with `pointing_game`, `energy`, `iou`, the `grid` [h, w] of its map and the
`chance` rates of that grid. Definitions: `medtk.train.explain.scoring` (the report prints them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from medtk.jsondoc import Document


@dataclass(frozen=True)
class Scores:
    """The three scores (means over images, each in [0, 1]); also their chance rates."""

    pointing_game: float
    energy: float
    iou: float


ChanceRates = Scores  # the scores of the same map with its cells shuffled (no location, same values, same grid)


@dataclass(frozen=True)
class LocalizationScore:
    name: str  # "cam", "gradcam@conv4_block6_out", "export:int8", ...
    kind: str  # "explanation" (Keras model) or "export" (a .tflite through medtk.runtime)
    method: str  # "cam", "gradcam" or "gradcam++"
    grid: tuple[int, int]  # [h, w] of the map
    images: int
    pointing_game: float
    energy: float
    iou: float
    chance: ChanceRates
    hits: int = 0  # pointing-game hits out of `images`
    layer: str | None = None  # the layer explained (Grad-CAM); "cam" for the in-graph CAM
    variant: str | None = None  # exported variant (kind "export")
    seconds: float | None = None  # wall time to compute the maps


@dataclass(frozen=True)
class LocalizationReport(Document):
    SCHEMA: ClassVar[str] = "medtk-localization/1"

    source: str  # the data source
    split: str  # the split scored ("test")
    lesion_class: str  # whose map is scored
    images: int  # images with a non-empty lesion mask
    margin_pixels: int  # pointing-game tolerance (mask dilation), at the mask's resolution
    iou_threshold: float  # fraction of the [0, 1] map's range
    chance_permutations: int
    input_size: int
    output_stride: int  # the Keras model's (input size / CAM grid)
    scores: tuple[LocalizationScore, ...] = ()
    examples: tuple[str, ...] = field(default_factory=tuple)  # PNG panels, relative to the run folder

    def score(self, name: str) -> LocalizationScore | None:
        return next((entry for entry in self.scores if entry.name == name), None)

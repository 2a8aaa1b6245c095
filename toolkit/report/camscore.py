"""The gallery's CAM hit rate (the pointing game of `medtk.train.explain.scoring`) for each variant.

Definitions live in `medtk.train.explain.scoring`; this module keeps the gallery's small `Localization`
record (hits, chance, grid). The full scores (pointing game, energy, IoU, every explanation method) are
`medtk explain RUN --localization` -> RUN/localization.json, shown by `medtk.report.explain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtk.train.explain.scoring import MARGIN_PIXELS, cell_bounds, lesion_region, overlapping_cells, peak_cell, score_maps
from medtk.runtime.geometry import CellGeometry

__all__ = ["MARGIN_PIXELS", "Localization", "cell_bounds", "lesion_region", "overlapping_cells", "peak_cell", "score"]


@dataclass(frozen=True)
class Localization:
    variant: str
    images: int
    hits: int
    chance: float | None  # expected hit rate of a random cell
    grid: tuple[int, int]
    margin: int

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.images if self.images else None


def score(variant: str, cams: list[np.ndarray], masks: list[np.ndarray], margin: int = MARGIN_PIXELS,
          geometry: CellGeometry | None = None) -> Localization:
    """`cams`: the lesion class's raw (h, w) map per image; `masks`: that image's (H, W) lesion mask;
    `geometry`: the variant's `cam_geometry` (None: an even grid)."""
    scored = score_maps(cams, masks, geometry=geometry, margin=margin, permutations=0)
    return Localization(
        variant=variant, images=scored.images, hits=scored.hits,
        chance=scored.chance.pointing_game if scored.images else None, grid=scored.grid, margin=margin,
    )

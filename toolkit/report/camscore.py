"""Does the CAM point at the lesion? Scored where lesion masks are known (synthetic data).

Definition (the report prints it): the model's CAM is an h x w grid over the image (each cell covers
rows [floor(i*H/h), ceil((i+1)*H/h)) and the same for columns, since inputs are resized without
padding). For each test image that has a lesion, take the lesion class's map, find its peak cell (the
largest logit; a constant map has no peak and counts as a miss), and call it a hit when that cell
overlaps the lesion mask dilated by `margin` pixels (a (2*margin+1)-pixel square, at the image's own
resolution). Chance is the hit rate of a peak cell drawn uniformly at random: the mean fraction of
cells that overlap the dilated lesion. A coarse grid makes both numbers high; compare them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN_PIXELS = 2


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


def lesion_region(mask: np.ndarray, margin: int = MARGIN_PIXELS) -> np.ndarray:
    import cv2

    mask = np.asarray(mask, dtype=np.uint8)
    if margin <= 0:
        return mask.astype(bool)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.dilate(mask, kernel).astype(bool)


def cell_bounds(index: int, cells: int, pixels: int) -> tuple[int, int]:
    return index * pixels // cells, -(-(index + 1) * pixels // cells)


def overlapping_cells(region: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(h, w) booleans: which CAM cells overlap `region` (H, W)."""
    h, w = grid
    height, width = region.shape
    result = np.zeros(grid, dtype=bool)
    for i in range(h):
        r0, r1 = cell_bounds(i, h, height)
        for j in range(w):
            c0, c1 = cell_bounds(j, w, width)
            result[i, j] = region[r0:r1, c0:c1].any()
    return result


def peak_cell(cam: np.ndarray) -> tuple[int, int] | None:
    cam = np.asarray(cam, dtype=np.float64)
    if not np.isfinite(cam).all() or cam.max() - cam.min() <= 1e-9 * max(1.0, abs(cam.max())):
        return None
    i, j = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(i), int(j)


def score(variant: str, cams: list[np.ndarray], masks: list[np.ndarray], margin: int = MARGIN_PIXELS) -> Localization:
    """`cams`: the lesion class's raw (h, w) map per image; `masks`: that image's (H, W) lesion mask."""
    hits, chances, grid = 0, [], (0, 0)
    for cam, mask in zip(cams, masks):
        grid = cam.shape
        cells = overlapping_cells(lesion_region(mask, margin), grid)
        chances.append(cells.mean())
        peak = peak_cell(cam)
        hits += int(peak is not None and bool(cells[peak]))
    return Localization(
        variant=variant, images=len(chances), hits=hits, chance=float(np.mean(chances)) if chances else None,
        grid=tuple(grid), margin=margin,
    )

"""Does an explanation point at the lesion? Three scores against known lesion masks, TensorFlow-free.

A map is an (h, w) grid of scores for the lesion class (a CAM's logits, a Grad-CAM heat map) over the
whole image (inputs are resized without padding). With the map's `CellGeometry` (medtk.runtime.cam)
each image pixel belongs to the cell whose receptive field is centred nearest to it; without one, cell
i covers rows [floor(i*H/h), ceil((i+1)*H/h)) and likewise for columns (an even grid). Each image with a
non-empty mask gets:

- **pointing game**: a hit when the map's peak cell overlaps the lesion mask dilated by `margin`
  pixels (a (2*margin+1)-pixel square at the mask's resolution: the usual pointing-game tolerance).
  A constant map has no peak and is a miss.
- **energy**: the map as the device shows it (`medtk.runtime.cam.class_map`: bilinear to the mask's
  size, min-max to [0, 1]), and the share of its mass inside the (undilated) mask.
- **IoU**: that [0, 1] map thresholded at `IOU_THRESHOLD` (0.5: half of its range above its minimum)
  against the (undilated) mask.

Chance is the score of a map with no location but the same values on the same grid: the map's cells
shuffled at random. For the pointing game that is exact (the peak lands on a uniformly random cell:
the fraction of cells overlapping the dilated mask); energy and IoU average `CHANCE_PERMUTATIONS`
seeded shuffles. A coarse grid makes both the scores and their chance high; compare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medtk.runtime.geometry import CellGeometry
from medtk.schema.localization import Scores

MARGIN_PIXELS = 2
IOU_THRESHOLD = 0.5
CHANCE_PERMUTATIONS = 16
CHANCE_SEED = 0


@dataclass(frozen=True)
class MapScores:
    """One method's (or exported variant's) maps scored over a set of images."""

    grid: tuple[int, int]
    images: int
    scores: Scores
    chance: Scores
    hits: int  # pointing-game hits (for the counts the report shows)


def lesion_region(mask: np.ndarray, margin: int = MARGIN_PIXELS) -> np.ndarray:
    """The mask dilated by a (2*margin+1)-pixel square."""
    import cv2

    mask = np.asarray(mask, dtype=np.uint8)
    if margin <= 0:
        return mask.astype(bool)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.dilate(mask, kernel).astype(bool)


def cell_bounds(index: int, cells: int, pixels: int) -> tuple[int, int]:
    return index * pixels // cells, -(-(index + 1) * pixels // cells)


def overlapping_cells(region: np.ndarray, grid: tuple[int, int], geometry: CellGeometry | None = None) -> np.ndarray:
    """(h, w) booleans: which map cells overlap `region` (H, W)."""
    h, w = grid
    height, width = region.shape
    result = np.zeros(grid, dtype=bool)
    if geometry is not None:
        rows, columns = np.nonzero(region)
        result[geometry.nearest_cells(height, h, 0)[rows], geometry.nearest_cells(width, w, 1)[columns]] = True
        return result
    for i in range(h):
        r0, r1 = cell_bounds(i, h, height)
        for j in range(w):
            c0, c1 = cell_bounds(j, w, width)
            result[i, j] = region[r0:r1, c0:c1].any()
    return result


def peak_cell(cells: np.ndarray) -> tuple[int, int] | None:
    """The largest cell; None for a constant (or non-finite) map, which carries no location."""
    cells = np.asarray(cells, dtype=np.float64)
    if not np.isfinite(cells).all() or cells.max() - cells.min() <= 1e-9 * max(1.0, abs(cells.max())):
        return None
    i, j = np.unravel_index(int(np.argmax(cells)), cells.shape)
    return int(i), int(j)


def shown_map(cells: np.ndarray, shape: tuple[int, int], geometry: CellGeometry | None = None) -> np.ndarray:
    """The map as the runtime shows it: bilinear to `shape`, min-max to [0, 1] (zeros when constant)."""
    from medtk.runtime.cam import class_map

    return class_map(np.asarray(cells, dtype=np.float32)[:, :, None], 0, int(shape[0]), int(shape[1]), geometry)


def energy(shown: np.ndarray, mask: np.ndarray) -> float:
    total = float(shown.sum())
    return float(shown[mask].sum()) / total if total > 0 else 0.0


def iou(shown: np.ndarray, mask: np.ndarray, threshold: float = IOU_THRESHOLD) -> float:
    region = shown >= threshold if shown.max() > 0 else np.zeros(shown.shape, dtype=bool)
    union = int((region | mask).sum())
    return int((region & mask).sum()) / union if union else 0.0


def score_maps(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, geometry: CellGeometry | None = None,
    margin: int = MARGIN_PIXELS, threshold: float = IOU_THRESHOLD, permutations: int = CHANCE_PERMUTATIONS,
    seed: int = CHANCE_SEED,
) -> MapScores:
    """`maps`: the lesion class's raw (h, w) map per image; `masks`: that image's (H, W) lesion mask;
    `geometry`: where the maps' cells sit (None: an even grid).

    Images whose mask is empty are not scored (there is nothing to point at).
    """
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps for {len(masks)} masks")
    rng = np.random.default_rng(seed)
    rows, chance_rows, grid, hits = [], [], (0, 0), 0
    for cells, mask in zip(maps, masks):
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        cells = np.asarray(cells, dtype=np.float32)
        grid = (int(cells.shape[0]), int(cells.shape[1]))
        targets = overlapping_cells(lesion_region(mask, margin), grid, geometry)
        peak = peak_cell(cells)
        hit = peak is not None and bool(targets[peak])
        hits += int(hit)
        shown = shown_map(cells, mask.shape, geometry)
        rows.append((float(hit), energy(shown, mask), iou(shown, mask, threshold)))
        shuffled = [shown_map(rng.permutation(cells.ravel()).reshape(grid), mask.shape, geometry)
                    for _ in range(permutations)]
        chance_rows.append((
            float(targets.mean()),
            float(np.mean([energy(s, mask) for s in shuffled])) if shuffled else 0.0,
            float(np.mean([iou(s, mask, threshold) for s in shuffled])) if shuffled else 0.0,
        ))
    if not rows:
        zero = Scores(0.0, 0.0, 0.0)
        return MapScores(grid=grid, images=0, scores=zero, chance=zero, hits=0)
    mean, chance = np.mean(rows, axis=0), np.mean(chance_rows, axis=0)
    return MapScores(
        grid=grid, images=len(rows), hits=hits,
        scores=Scores(*(float(v) for v in mean)), chance=Scores(*(float(v) for v in chance)),
    )

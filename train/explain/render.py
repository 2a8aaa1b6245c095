"""Explanations as PNG pictures: a map over its image, a grid of feature maps, a comparison panel.

Maps are shown the way the device shows a CAM (`medtk.runtime.cam.class_map` then `overlay`), so a
Grad-CAM picture and a device CAM picture differ only in the map. Files are written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from medtk.runtime.geometry import CellGeometry


TILE_PIXELS = 160
FEATURE_TILE_PIXELS = 96
OUTLINE_RGB = (255, 0, 255)  # magenta: absent from the jet colour map


def _to_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    """The image enlarged (nearest, whole factor) or shrunk (area) to about `size` px on its long side."""
    import cv2

    height, width = image.shape[:2]
    scale = size / max(height, width)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    return cv2.resize(image, target, interpolation=interpolation)


def map_overlay(image: np.ndarray, cells: np.ndarray, size: int = TILE_PIXELS,
                geometry: CellGeometry | None = None) -> np.ndarray:
    """RGB uint8: the raw (h, w) map normalised as on the device (on its cells' `geometry`), over the image."""
    from medtk.runtime.cam import class_map, overlay

    shown = _tile(_to_rgb(image), size)
    heat = class_map(np.asarray(cells, np.float32)[:, :, None], 0, shown.shape[0], shown.shape[1], geometry)
    return overlay(shown, heat)


def outline(rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    import cv2

    if mask is None or not np.asarray(mask).any():
        return rgb
    region = cv2.resize(np.asarray(mask, np.uint8), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(np.ascontiguousarray(rgb).copy(), contours, -1, OUTLINE_RGB, 1)


def _caption(rgb: np.ndarray, text: str) -> np.ndarray:
    import cv2

    band = np.full((18, rgb.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text[:40], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, rgb])


def panel(image: np.ndarray, mask: np.ndarray | None,
          maps: Sequence[tuple[str, np.ndarray, CellGeometry | None]]) -> np.ndarray:
    """One row: the image (lesion outlined), then each (title, raw map, its geometry) over it, outlined too."""
    tiles = [_caption(outline(_tile(_to_rgb(image), TILE_PIXELS), mask), "image")]
    for title, cells, geometry in maps:
        grid = f"{cells.shape[0]}x{cells.shape[1]}"
        tiles.append(_caption(outline(map_overlay(image, cells, geometry=geometry), mask), f"{title} ({grid})"))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.hstack(row)


def feature_grid(image: np.ndarray, maps: np.ndarray, channels: np.ndarray, columns: int = 4) -> np.ndarray:
    """(h, w, top) activations as a grid of viridis tiles, each scaled to its own range, labelled by channel."""
    import cv2

    tiles = []
    for index in range(maps.shape[-1]):
        cells = maps[:, :, index].astype(np.float32)
        low, high = float(cells.min()), float(cells.max())
        scaled = np.zeros_like(cells) if high <= low else (cells - low) / (high - low)
        heat = cv2.applyColorMap(np.round(scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
        heat = cv2.cvtColor(cv2.resize(heat, (FEATURE_TILE_PIXELS, FEATURE_TILE_PIXELS), interpolation=cv2.INTER_NEAREST),
                            cv2.COLOR_BGR2RGB)
        tiles.append(_caption(heat, f"ch {int(channels[index])}"))
    tiles.insert(0, _caption(_tile(_to_rgb(image), FEATURE_TILE_PIXELS), "image"))
    blank = np.full_like(tiles[0], 255)
    while len(tiles) % columns:
        tiles.append(blank)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    from medtk.io import atomic_write_png

    return atomic_write_png(path, rgb)

"""Explain image files with a run's Keras model: one overlay PNG per image, feature grids on request.

Images are decoded and prepared exactly as for training and the device (`decode_image`,
`prepare_input`). An image that cannot be decoded is reported and skipped; the rest still run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from medtk.errors import ConfigError, ImageDecodeError
from medtk.runtime.geometry import CellGeometry

log = logging.getLogger(__name__)

FEATURE_CHANNELS = 15  # + the image: a 4 x 4 grid


@dataclass(frozen=True)
class Explained:
    image: str
    label: str  # the class explained
    probability: float  # the model's probability of that class
    method: str
    layer: str
    grid: tuple[int, int]
    files: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    image: str
    error: str


def class_index(class_names: Sequence[str], name: str | None) -> int | None:
    if name is None:
        return None
    if name not in class_names:
        raise ConfigError(f"--class {name!r} is not one of the model's classes ({', '.join(class_names)})")
    return list(class_names).index(name)


def explain_files(model, images: Sequence[Path], out: Path, *, class_names: Sequence[str], method: str = "cam",
                  layer: str | None = None, features: Sequence[str] = (), target: str | None = None,
                  channels_shown: int = FEATURE_CHANNELS) -> tuple[list[Explained], list[Failure]]:
    from medtk.runtime.imaging import decode_image, prepare_input
    from medtk.train.explain.maps import METHODS, check_layer, explain, feature_maps
    from medtk.train.cam_geometry import cell_geometry
    from medtk.train.explain.render import feature_grid, map_overlay, write_png

    if method not in METHODS:
        explain(model, np.zeros((0,)), method)  # raises the one-line message with a suggestion
    if layer is not None and method != "cam":
        check_layer(model, layer)
    for name in features:
        check_layer(model, name, option="--features")
    wanted = class_index(class_names, target)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    names = _Names()
    done, failed = [], []
    geometries: dict[str, CellGeometry | None] = {}  # where each layer's cells sit, for drawing its maps
    for path in images:
        try:
            decoded = decode_image(path)
        except ImageDecodeError as error:
            log.warning("skipped %s: %s", path, error)
            failed.append(Failure(image=str(path), error=str(error)))
            continue
        batch = prepare_input(decoded, size, channels)[None]
        result = explain(model, batch, method, layer, class_index=wanted)
        index = int(result.class_indices[0])
        probs = np.asarray(model(batch.astype(np.float32), training=False)[0])[0]
        if result.layer not in geometries:
            geometries[result.layer] = cell_geometry(model, result.layer)
        overlay = map_overlay(decoded, result.maps[0], geometry=geometries[result.layer])
        files = [write_png(out / names.next(path, method.replace("++", "pp")), overlay)]
        for name in features:
            maps = feature_maps(model, batch, name, top=channels_shown)
            files.append(write_png(out / names.next(path, f"features_{name}"),
                                   feature_grid(decoded, maps.maps[0], maps.channels[0])))
        done.append(Explained(
            image=str(path), label=str(class_names[index]) if index < len(class_names) else str(index),
            probability=float(probs[index]), method=method, layer=result.layer,
            grid=(int(result.maps.shape[1]), int(result.maps.shape[2])), files=tuple(str(f) for f in files),
        ))
    return done, failed


class _Names:
    """`<stem>_<what>.png`; a second image with the same stem gets `_2`, `_3`, ..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def next(self, image: Path, what: str) -> str:
        name, count = f"{image.stem}_{what}.png", 1
        while name in self.used:
            count += 1
            name = f"{image.stem}_{what}_{count}.png"
        self.used.add(name)
        return name

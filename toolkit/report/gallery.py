"""The CAM gallery: test images through the float32 and int8 `.tflite` files with `medtk.runtime`.

The same runtime an integrator uses (`Classifier.predict`, `overlay`) produces every picture, so the
report shows what the device will show. Cases are chosen deterministically: the errors first (up to
a third of the gallery), then correct cases alternating between classes, in test-split order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.report.camscore import Localization, lesion_region, score

GALLERY_SIZE = 8
MAX_SCANNED = 400  # test images run through each model to pick cases and score CAMs
DISPLAY_PIXELS = 150
OUTLINE_RGB = (255, 0, 255)  # magenta: absent from the jet colour map and visible on gray


@dataclass(frozen=True)
class Panel:
    variant: str
    uri: str
    label: str
    probability: float
    correct: bool


@dataclass(frozen=True)
class Case:
    item: str  # the split's item id: a path relative to the data root, or 'test[12]'
    true_label: str
    image_uri: str
    has_lesion_mask: bool
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Gallery:
    variants: tuple[str, ...]
    cases: tuple[Case, ...]
    localization: tuple[Localization, ...]
    scanned: int
    cam_grid: tuple[int, int]
    backend: str
    lesion_class: str | None


def build_gallery(split, class_names: list[str], models: dict[str, Path]) -> Gallery:
    """`models`: variant name -> path of its `.tflite` (float32 first); `split`: the run's test split."""
    from medtk.runtime import Classifier
    from medtk.runtime.versions import runtime_versions

    classifiers = {name: Classifier(path, num_threads=None) for name, path in models.items()}
    scanned = _scanned_indices(len(split))
    first = next(iter(classifiers.values()))
    prepared = _prepare(split, scanned, first.input_size, first.channels)
    outputs = {name: clf.predict_prepared(prepared) for name, clf in classifiers.items()}
    labels = np.asarray(split.labels)[scanned]
    chosen = _choose(labels, {name: probs.argmax(axis=1) for name, (probs, _) in outputs.items()})
    cases = tuple(_case(split, int(scanned[k]), class_names, classifiers) for k in chosen)
    geometries = {name: clf.metadata.cam_geometry for name, clf in classifiers.items()}
    localization, lesion_class = _localization(split, scanned, outputs, geometries)
    grid = tuple(next(iter(outputs.values()))[1].shape[1:3])
    return Gallery(
        variants=tuple(classifiers), cases=cases, localization=localization, scanned=len(scanned),
        cam_grid=grid, backend=str(runtime_versions()), lesion_class=None if lesion_class is None else class_names[lesion_class],
    )


def _scanned_indices(count: int) -> np.ndarray:
    if count <= MAX_SCANNED:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, MAX_SCANNED).round().astype(int))


def _prepare(split, indices: np.ndarray, size: int, channels: int) -> np.ndarray:
    from medtk.runtime.imaging import prepare_input

    return np.stack([prepare_input(split.load(int(i)), size, channels) for i in indices])


def _choose(labels: np.ndarray, predicted: dict[str, np.ndarray]) -> list[int]:
    """Positions in the scanned list: errors of any model first, then correct ones alternating by class."""
    wrong = np.zeros(len(labels), dtype=bool)
    for guesses in predicted.values():
        wrong |= guesses != labels
    errors = list(np.flatnonzero(wrong)[: GALLERY_SIZE // 3])
    queues = {c: [int(k) for k in np.flatnonzero((labels == c) & ~wrong)] for c in np.unique(labels)}
    chosen = [int(k) for k in errors]
    while len(chosen) < GALLERY_SIZE and any(queues.values()):
        for queue in queues.values():
            if queue and len(chosen) < GALLERY_SIZE:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda k: (int(labels[k]), k))


def _case(split, index: int, class_names: list[str], classifiers: dict) -> Case:
    from medtk.runtime import overlay
    from medtk.report.images import array_uri, enlarge, to_rgb

    image = split.load(index)
    truth = int(split.labels[index])
    mask = split.masks(index) if split.masks is not None else None
    has_mask = mask is not None and bool(np.asarray(mask).any())
    shown = enlarge(to_rgb(image), DISPLAY_PIXELS)
    outline = _outline(mask, image.shape[:2], shown.shape[:2]) if has_mask else None
    panels = []
    for name, clf in classifiers.items():
        prediction = clf.predict(image)
        blended = overlay(shown, prediction.cam)
        panels.append(Panel(
            variant=name, uri=array_uri(_draw(blended, outline)), label=prediction.label,
            probability=prediction.probabilities[prediction.label], correct=prediction.class_index == truth,
        ))
    return Case(
        item=str(split.ids[index]), true_label=class_names[truth], image_uri=array_uri(_draw(shown, outline)),
        has_lesion_mask=has_mask, panels=tuple(panels),
    )


def _outline(mask: np.ndarray, shape: tuple[int, int], display: tuple[int, int]):
    """Contours of the scored lesion region (mask dilated by the scoring margin) at display size."""
    import cv2

    region = lesion_region(mask).astype(np.uint8)
    if region.shape != shape:
        region = cv2.resize(region, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    region = cv2.resize(region, (display[1], display[0]), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return contours


def _draw(rgb: np.ndarray, contours) -> np.ndarray:
    import cv2

    if not contours:
        return rgb
    return cv2.drawContours(np.ascontiguousarray(rgb).copy(), contours, -1, OUTLINE_RGB, 1)


def _localization(split, scanned: np.ndarray, outputs: dict,
                  geometries: dict) -> tuple[tuple[Localization, ...], int | None]:
    """Score every variant's lesion-class CAM (on its cells' geometry) on the scanned test images that
    carry a lesion mask."""
    if split.masks is None:
        return (), None
    masks, rows = [], []
    for row, index in enumerate(scanned):
        mask = np.asarray(split.masks(int(index)))
        if mask.any():
            masks.append(mask)
            rows.append(row)
    if not rows:
        return (), None
    lesion_labels = np.asarray(split.labels)[scanned[rows]]
    lesion_class = int(np.bincount(lesion_labels).argmax())
    results = tuple(
        score(name, [cams[row, :, :, lesion_class] for row in rows], masks, geometry=geometries[name])
        for name, (_, cams) in outputs.items()
    )
    return results, lesion_class

"""`localize_run(RUN)`: score every explanation method and every exported variant's CAM on the test
images that carry a lesion mask, write RUN/localization.json and a few comparison panels.

Methods on the Keras model: the CAM, Grad-CAM and Grad-CAM++ on the finer layer (ResNet50
`conv4_block6_out`, or `layer`). Exported variants: each `.tflite` in compress.json run through
`medtk.runtime.Classifier` (the device's own CAM). Scores and chance rates: scoring.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.errors import DataError
from medtk.run import Run
from medtk.runtime.geometry import CellGeometry
from medtk.schema.localization import ChanceRates, LocalizationReport, LocalizationScore
from medtk.train.explain.scoring import CHANCE_PERMUTATIONS, IOU_THRESHOLD, MARGIN_PIXELS, MapScores, score_maps

log = logging.getLogger(__name__)

BATCH = 16
EXAMPLES = 4
SPLIT = "test"


@dataclass(frozen=True)
class LesionImages:
    ids: list[str]
    images: list[np.ndarray]  # decoded, at the source's resolution
    masks: list[np.ndarray]
    lesion_class: int


def lesion_images(run: Run, limit: int | None = None) -> tuple[str, list[str], LesionImages]:
    """The run's test images with a non-empty lesion mask (at most `limit`), in split order."""
    dataset = run.dataset()
    split = dataset.splits[SPLIT]
    if split.masks is None:
        raise DataError(f"{dataset.source}: this data source has no lesion masks, so localisation cannot be "
                        "scored (synthetic[:N] has them)")
    chosen = [i for i in range(len(split)) if np.asarray(split.masks(i)).any()]
    if limit is not None:
        chosen = chosen[:limit]
    if not chosen:
        raise DataError(f"{dataset.source}: no {SPLIT} image has a lesion mask")
    labels = np.asarray(split.labels)[chosen]
    names = list(dataset.class_names)
    finding = dataset.finding if dataset.finding in names else None
    lesion = names.index(finding) if finding else int(np.bincount(labels).argmax())
    return dataset.source, names, LesionImages(
        ids=[str(split.ids[i]) for i in chosen], images=[split.load(i) for i in chosen],
        masks=[np.asarray(split.masks(i), dtype=bool) for i in chosen], lesion_class=lesion,
    )


def localize_run(run_dir: Path, *, layer: str | None = None, limit: int | None = None,
                 threads: int | None = None, examples: int = EXAMPLES) -> LocalizationReport:
    from medtk.runtime.imaging import prepare_input
    from medtk.train.cam_geometry import cell_geometry
    from medtk.train.explain.maps import explain, finer_layer
    from medtk.train.explain.render import panel, write_png
    from medtk.train.model import cam_grid, load_classifier

    run = Run(run_dir)
    model = load_classifier(run.require_model())
    if layer is not None:
        from medtk.train.explain.maps import check_layer

        check_layer(model, layer)
    source, class_names, data = lesion_images(run, limit)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    batch = np.stack([prepare_input(image, size, channels) for image in data.images])
    target = data.lesion_class
    log.info("scoring localisation on %d %s images with lesion masks (class %s)", len(batch), SPLIT, class_names[target])

    maps: dict[str, tuple[LocalizationScore, np.ndarray, CellGeometry | None]] = {}
    grad_layer = layer or finer_layer(model)
    for method, on in (("cam", None), ("gradcam", grad_layer), ("gradcam++", grad_layer)):
        started = time.perf_counter()
        chunks = [explain(model, batch[i : i + BATCH], method, on, class_index=target) for i in range(0, len(batch), BATCH)]
        cells = np.concatenate([chunk.maps for chunk in chunks])
        name = method if method == "cam" else f"{method}@{chunks[0].layer}"
        geometry = cell_geometry(model, chunks[0].layer)
        scores = score_maps(list(cells), data.masks, geometry=geometry)
        entry = _entry(name, "explanation", method, scores, time.perf_counter() - started, layer=chunks[0].layer)
        maps[name] = (entry, cells, geometry)
    for variant, path in _exports(run):
        from medtk.runtime import Classifier

        started = time.perf_counter()
        classifier = Classifier(path, num_threads=threads)
        prepared = np.stack([classifier.prepare(image) for image in data.images])  # as the device feeds it
        cams = np.concatenate([classifier.predict_prepared(prepared[i : i + BATCH])[1] for i in range(0, len(prepared), BATCH)])
        cells, geometry = cams[:, :, :, target], classifier.metadata.cam_geometry  # as the device draws it
        name = f"export:{variant}"
        scores = score_maps(list(cells), data.masks, geometry=geometry)
        maps[name] = (_entry(name, "export", "cam", scores, time.perf_counter() - started, layer="cam", variant=variant),
                      cells, geometry)
    for entry, _, _ in maps.values():
        log.info("%-28s grid %dx%d  pointing %.3f (chance %.3f)  energy %.3f (%.3f)  IoU %.3f (%.3f)", entry.name,
                 *entry.grid, entry.pointing_game, entry.chance.pointing_game, entry.energy, entry.chance.energy,
                 entry.iou, entry.chance.iou)

    written = []
    folder = run.explain_dir / "localization"
    for k in range(min(examples, len(batch))):
        picture = panel(data.images[k], data.masks[k],
                        [(_short(name), cells[k], geometry) for name, (_, cells, geometry) in maps.items()])
        path = write_png(folder / f"lesion_{k:02d}.png", picture)
        written.append(str(path.relative_to(run.root)))
    grid = cam_grid(model)
    report = LocalizationReport(
        source=source, split=SPLIT, lesion_class=class_names[target], images=len(batch), margin_pixels=MARGIN_PIXELS,
        iou_threshold=IOU_THRESHOLD, chance_permutations=CHANCE_PERMUTATIONS, input_size=size,
        output_stride=size // grid[0], scores=tuple(entry for entry, _, _ in maps.values()), examples=tuple(written),
    )
    run.write(run.localization_file, report)
    return report


def _exports(run: Run) -> list[tuple[str, Path]]:
    """Every exported variant listed in compress.json whose file is there, in its order."""
    report = run.compression()
    if report is None:
        return []
    found = []
    for entry in report.variants:
        path = run.exported(entry.name)
        if path is not None:
            found.append((entry.name, path))
    return found


def _short(name: str) -> str:
    return name.replace("export:", "").replace("gradcam++@", "Grad-CAM++ ").replace("gradcam@", "Grad-CAM ")


def _entry(name: str, kind: str, method: str, scored: MapScores, seconds: float, *, layer: str | None = None,
           variant: str | None = None) -> LocalizationScore:
    return LocalizationScore(
        name=name, kind=kind, method=method, grid=scored.grid, images=scored.images,
        pointing_game=scored.scores.pointing_game, energy=scored.scores.energy, iou=scored.scores.iou,
        chance=ChanceRates(pointing_game=scored.chance.pointing_game, energy=scored.chance.energy, iou=scored.chance.iou),
        hits=scored.hits, layer=layer, variant=variant, seconds=round(seconds, 3),
    )

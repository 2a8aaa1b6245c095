"""`load_dataset`: read a source, drop bad files, split, and hand back a checked `Dataset`.

Order matters: bad files are dropped before splitting, so a saved split file lists exactly the
usable items; with `split_file`, the listed items are picked first (so only they are decoded) and
then checked, and the run's splits come back item for item.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from medtk.data.base import SPLITS, Dataset, Skipped, Split
from medtk.data.catalog import Catalog
from medtk.data.sources import open_source
from medtk.data.splitfile import read_split
from medtk.data.splitting import check_fractions, split_indices, subset_indices
from medtk.data.validate import check_files
from medtk.errors import ConfigError, DataError

INTENSITY_SAMPLE = 64  # images whose headers (or arrays) describe the source's kinds of image


def load_dataset(
    src: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    max_bad_fraction: float = 0.05,
    split_file: Path | None = None,
    subset: int | None = None,
    on_decoded: Callable[[str, np.ndarray], None] | None = None,
) -> Dataset:
    """The data of `src` split into train/val/test (see `medtk.data` for the forms of `src`).

    Sources with their own split keep it; others are split here, stratified by class and grouped by
    patient when patient ids are known. `split_file` reproduces a saved split exactly: every listed
    item must still be there with its label, and unlisted items are left out (`subset` is then not
    applied again: the file already is the subset). `subset` keeps at most that many items per
    split, stratified and seeded, for smoke runs. `on_decoded(item id, image)` receives every image the
    bad-file check decodes (a `medtk.data.staging.DecodedStage` keeps them, so nothing decodes them again).
    """
    check_fractions(val_fraction, test_fraction)
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ConfigError(f"max_bad_fraction={max_bad_fraction!r} is out of range; expected 0 to 1")
    if subset is not None and subset < 1:
        raise ConfigError(f"subset={subset!r} must be a positive number of items per split")
    catalog = open_source(src)
    _require_classes(catalog)
    if split_file is not None:
        assignment = read_split(Path(split_file), catalog)
        listed = np.flatnonzero(assignment >= 0)
        catalog = replace(catalog.take(listed), given_split=assignment[listed])
    catalog, skipped = check_files(catalog, max_bad_fraction, on_decoded=on_decoded)
    if split_file is not None:
        assignment, origin = catalog.given_split, "file"
    elif catalog.given_split is not None:
        assignment, origin = _complete_given(catalog, seed, val_fraction), "given"
    else:
        groups = catalog.patient_ids
        parts = split_indices(catalog.labels, seed=seed, val_fraction=val_fraction,
                              test_fraction=test_fraction, groups=groups)
        assignment = _assignment(parts, len(catalog))
        origin = "grouped" if groups is not None else "stratified"
    indices = {name: np.flatnonzero(assignment == k) for k, name in enumerate(SPLITS)}
    if subset is not None and split_file is None:
        indices = {name: idx[subset_indices(catalog.labels[idx], subset, seed)] for name, idx in indices.items()}
    dataset = _assemble(catalog, indices, skipped, origin)
    _require_training_classes(dataset)
    return dataset


def _complete_given(catalog: Catalog, seed: int, val_fraction: float) -> np.ndarray:
    """The source's split; a split folder without val/ gets val carved (stratified) from train."""
    assignment = catalog.given_split.copy()
    if (assignment == 1).any() or val_fraction == 0:
        return assignment
    train = np.flatnonzero(assignment == 0)
    groups = None if catalog.patient_ids is None else [catalog.patient_ids[i] for i in train]
    parts = split_indices(catalog.labels[train], seed=seed, val_fraction=val_fraction, test_fraction=0.0,
                          groups=groups)
    assignment[train[parts["val"]]] = 1
    return assignment


def _assignment(parts: dict[str, np.ndarray], count: int) -> np.ndarray:
    assignment = np.empty(count, dtype=np.int64)
    for k, name in enumerate(SPLITS):
        assignment[parts[name]] = k
    return assignment


def _assemble(catalog: Catalog, indices: dict[str, np.ndarray], skipped: list[Skipped], origin: str) -> Dataset:
    splits = {}
    for name, idx in indices.items():
        part = catalog.take(idx)
        splits[name] = Split(ids=part.ids, labels=part.labels, load=part.load, patient_ids=part.patient_ids,
                             masks=part.masks, files=part.files)
    kept = np.concatenate(list(indices.values()))
    shapes = Counter(catalog.shapes[int(i)] for i in kept) if catalog.shapes is not None else Counter()
    return Dataset(source=catalog.source, class_names=catalog.class_names, splits=splits, skipped=skipped,
                   split_origin=origin, image_shapes=dict(sorted(shapes.items())), finding=catalog.finding,
                   intensity=_intensity(catalog))


def _intensity(catalog: Catalog):
    """What kinds of images the source holds (bit depth, photometric interpretation, modality), from a
    spread sample: file headers only, or in-memory arrays. The exported model records it, so the device
    can warn about an input of another kind."""
    from medtk.runtime.intensity import Intensity, describe_intensity

    if catalog.intensity is not None:
        return Intensity.from_dict(catalog.intensity)
    if len(catalog) == 0:
        return None
    sample = np.unique(np.linspace(0, len(catalog) - 1, min(len(catalog), INTENSITY_SAMPLE)).astype(int))
    if catalog.files is not None:
        return describe_intensity(catalog.files[int(i)] for i in sample)
    return describe_intensity(catalog.load(int(i)) for i in sample)


def _require_classes(catalog: Catalog) -> None:
    present = catalog.present_classes()
    if len(present) < 2:
        found = f"only class {present[0]!r}" if present else "no labelled images"
        raise DataError(f"{catalog.source}: {found} found; a classifier needs at least two classes")


def _require_training_classes(dataset: Dataset) -> None:
    train = dataset.splits["train"]
    empty = [name for k, name in enumerate(dataset.class_names) if not (train.labels == k).any()]
    if empty:
        raise DataError(f"{dataset.source}: no training images for class(es) {', '.join(empty)} "
                        f"(after skipping {len(dataset.skipped)} unreadable files); every class needs training data")

"""A prepared dataset as a data source: `--data DATASET` works wherever a source does, without decoding.

The catalog lists every record from the shards' index files (offset, label, id, group: no image is
read to build it) with its split as the source's own ("given") split, and loads an item by seeking to
its record (checksums verified). Its images are already model input, so `prepare_input` at the same
size and channels returns them unchanged: eval, compress, explain and report read the prepared pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtk.data.base import SPLITS
from medtk.data.catalog import Catalog
from medtk.data.prepared.reader import RecordRef, open_prepared
from medtk.errors import DataError


def load_prepared(path: Path, source: str) -> Catalog:
    """Every record of the prepared dataset in `path`, in split then shard order."""
    dataset = open_prepared(path)
    refs: list[RecordRef] = []
    splits: list[int] = []
    for k, split in enumerate(SPLITS):
        if split in dataset.manifest.layout.shards:
            before = len(refs)
            refs.extend(dataset.index(split))
            splits.extend([k] * (len(refs) - before))
    labels = np.asarray([ref.label for ref in refs], dtype=np.int64)
    if labels.min(initial=0) < 0:
        raise DataError(f"{path}: holds unlabelled items (label -1); a training source needs every label")

    def load(index: int) -> np.ndarray:
        """HxW for one channel, as a decoded grayscale file is (so channel detection reads it right)."""
        image = refs[index].read().image
        return image[:, :, 0] if image.shape[2] == 1 else image

    groups = [ref.group for ref in refs]
    preprocessing = dataset.manifest.preprocessing
    shape = f"{preprocessing.input_size}x{preprocessing.input_size}" + (
        "" if preprocessing.channels == 1 else f"x{preprocessing.channels}")
    return Catalog(
        source=source,
        class_names=tuple(dataset.class_names),
        ids=[ref.source_id for ref in refs],
        labels=labels,
        load=load,
        patient_ids=groups if any(groups) else None,
        given_split=np.asarray(splits, dtype=np.int64),
        shapes=[shape] * len(refs),
        finding=dataset.manifest.finding,
        intensity=dataset.manifest.intensity,
    )

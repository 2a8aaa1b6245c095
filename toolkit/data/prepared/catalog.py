"""A prepared dataset as a data source: `--data DATASET` works wherever a source does, without decoding.

The catalog lists every record from the shards' index files (offset, label, id, group: no image is
read to build it) with its split as the source's own ("given") split, and loads an item by seeking to
its record (checksums verified). Its images are already model input, so `prepare_input` at the same
size and channels returns them unchanged: eval, compress, explain and report read the prepared pixels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medtk.data.base import SPLITS
from medtk.data.catalog import Catalog
from medtk.data.prepared.example import decode
from medtk.data.prepared.manifest import INDEX_COLUMNS
from medtk.data.prepared.reader import open_prepared
from medtk.data.prepared.tfrecord import read_record_at
from medtk.errors import DataError


def load_prepared(path: Path, source: str) -> Catalog:
    """Every record of the prepared dataset in `path`, in split then shard order."""
    dataset = open_prepared(path)
    ids: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    splits: list[int] = []
    where: list[tuple[Path, int]] = []
    for k, split in enumerate(SPLITS):
        if split not in dataset.manifest.layout.shards:
            continue
        for shard in dataset.shards(split):
            rows = _index_rows(dataset.root / shard.index_file, shard.records)
            for offset, label, item, group in rows:
                ids.append(item)
                labels.append(label)
                groups.append(group)
                splits.append(k)
                where.append((dataset.root / shard.file, offset))
    if min(labels, default=0) < 0:
        raise DataError(f"{path}: holds unlabelled items (label -1); a training source needs every label")

    def load(index: int) -> np.ndarray:
        """HxW for one channel, as a decoded grayscale file is (so channel detection reads it right)."""
        shard, offset = where[index]
        image = decode(read_record_at(shard, offset), f"{shard} byte {offset}").image
        return image[:, :, 0] if image.shape[2] == 1 else image

    preprocessing = dataset.manifest.preprocessing
    shape = f"{preprocessing.input_size}x{preprocessing.input_size}" + (
        "" if preprocessing.channels == 1 else f"x{preprocessing.channels}")
    return Catalog(
        source=source,
        class_names=tuple(dataset.class_names),
        ids=ids,
        labels=np.asarray(labels, dtype=np.int64),
        load=load,
        patient_ids=groups if any(groups) else None,
        given_split=np.asarray(splits, dtype=np.int64),
        shapes=[shape] * len(ids),
        finding=dataset.manifest.finding,
        intensity=dataset.manifest.intensity,
    )


def _index_rows(path: Path, expected: int) -> list[tuple[int, int, str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: shard index listed in the manifest is missing")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        if tuple(next(reader, ())) != INDEX_COLUMNS:
            raise DataError(f"{path}: not a shard index (expected columns {','.join(INDEX_COLUMNS)})")
        rows = [(int(offset), int(label), item, group) for offset, label, item, group in reader]
    if len(rows) != expected:
        raise DataError(f"{path}: {len(rows)} rows, the manifest lists {expected} records")
    return rows

"""split.csv: the exact split of a run, saved so eval/compress reload the very same items.

Columns `split,id,label,patient_id` (label is the class name). Reading it back checks that the
data still holds every listed item with the same label: a changed folder must not silently change
the test set a model is judged on. Data items the file does not list (files added later, or the
rest of the data of a `subset` run) are left out, which is what reproducing the split means.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from medtk.data.base import SPLITS, Dataset
from medtk.data.catalog import Catalog
from medtk.errors import DataError
from medtk.io import atomic_write_text

COLUMNS = ("split", "id", "label", "patient_id")
SHOWN = 3


def save_split(dataset: Dataset, path: Path) -> None:
    """Write `path` atomically: one row per item, splits in train/val/test order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for name, split in dataset.splits.items():
        for i, item in enumerate(split.ids):
            patient = split.patient_ids[i] if split.patient_ids is not None else ""
            writer.writerow((name, item, dataset.class_names[int(split.labels[i])], patient))
    atomic_write_text(Path(path), buffer.getvalue())


def read_split(path: Path, catalog: Catalog) -> np.ndarray:
    """Each catalog item's split index, -1 for items the file does not list."""
    path = Path(path)
    rows = _read_rows(path)
    where = {item: k for k, item in enumerate(catalog.ids)}
    assignment = np.full(len(catalog), -1, dtype=np.int64)
    unknown = []
    for line, row in rows:
        split, item, label = row["split"], row["id"], row["label"]
        if split not in SPLITS:
            raise DataError(f"{path}:{line}: split {split!r} is not one of {', '.join(SPLITS)}")
        if item not in where:
            unknown.append(item)
            continue
        index = where[item]
        if assignment[index] != -1:
            raise DataError(f"{path}:{line}: {item} is listed twice")
        actual = catalog.class_names[int(catalog.labels[index])]
        if label != actual:
            raise DataError(f"{path}:{line}: {item} is labelled {label!r} in the split file but {actual!r} "
                            "in the data; the data changed since the split was saved")
        assignment[index] = SPLITS.index(split)
    if unknown:
        raise DataError(f"{path}: {len(unknown)} items of the split file are not in the data "
                        f"({catalog.source}): {_first(unknown)}; the data changed since the split was saved")
    return assignment


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise DataError(f"{path}: no such split file")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in COLUMNS[:3] if name not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a split file has "
                            f"{','.join(COLUMNS)}")
        return [(reader.line_num, row) for row in reader]


def _first(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (" ..." if len(items) > SHOWN else "")

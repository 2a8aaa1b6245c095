"""A folder of class subfolders (`root/<class>/...`), or one already split (`root/train/<class>/...`).

Class names are the subfolder names, sorted. In a split folder `train/` and `test/` are required and
`val/` is optional (when absent, `load_dataset` carves it from train). Item ids are paths relative to
the root, so they are stable across machines and never carry DICOM header fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtk.data.base import SPLITS
from medtk.data.catalog import Catalog
from medtk.data.files import file_loader, relative_id
from medtk.errors import DataError
from medtk.runtime.inputs import find_images


def load_folder(root: Path, source: str | None = None) -> Catalog:
    root = Path(root)
    subfolders = _subfolders(root)
    if not subfolders:
        raise DataError(f"{root}: no class subfolders found; expected {root}/<class>/<image files> "
                        f"or {root}/train/<class>/...")
    names = {folder.name for folder in subfolders}
    if "train" in names and names <= set(SPLITS):
        return _split_folder(root, source)
    class_names = tuple(sorted(names))
    files, labels = _class_files(root, root, class_names)
    return _catalog(root, source, class_names, files, labels, given_split=None)


def _split_folder(root: Path, source: str | None) -> Catalog:
    present = [split for split in SPLITS if (root / split).is_dir()]
    if "test" not in present:
        raise DataError(f"{root}: has train/ but no test/; a split folder needs train/ and test/ (val/ is optional)")
    class_names = tuple(sorted({sub.name for split in present for sub in _subfolders(root / split)}))
    if not class_names:
        raise DataError(f"{root}: no class subfolders found under {', '.join(f'{s}/' for s in present)}")
    files, labels, splits = [], [], []
    for split in present:
        split_files, split_labels = _class_files(root, root / split, class_names)
        files += split_files
        labels += split_labels
        splits += [SPLITS.index(split)] * len(split_files)
    return _catalog(root, source, class_names, files, labels, given_split=np.array(splits, dtype=np.int64))


def _class_files(root: Path, folder: Path, class_names: tuple[str, ...]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, name in enumerate(class_names):
        if (folder / name).is_dir():
            found = find_images(folder / name, max_files=None)
            files += found
            labels += [label] * len(found)
    return files, labels


def _catalog(root, source, class_names, files, labels, given_split) -> Catalog:
    if not files:
        raise DataError(f"{root}: no images found in the class subfolders ({', '.join(class_names)}); "
                        "expected PNG, JPEG, BMP, TIFF or DICOM files")
    return Catalog(
        source=source or str(root),
        class_names=class_names,
        ids=[relative_id(path, root) for path in files],
        labels=np.array(labels, dtype=np.int64),
        load=file_loader(files),
        given_split=given_split,
        files=files,
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

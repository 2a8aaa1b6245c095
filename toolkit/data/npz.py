"""MedMNIST-layout `.npz` files: arrays for the three official splits, kept as given.

No decode pass is needed (the pixels are already arrays), so the checks here are on the arrays:
keys, counts, shapes, dtype, NaNs, label range. Class names come from MedMNIST's table when the file
is named like an official file, else they are the label numbers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from medtk.data.base import SPLITS
from medtk.data.catalog import Catalog, shape_name
from medtk.data.medmnist_info import info_for_file
from medtk.errors import DataError
from medtk.runtime.imaging import decode_image

KEYS = tuple(f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels"))


def load_npz(path: Path, source: str | None = None) -> Catalog:
    """All items of a MedMNIST-layout file, in official split order; raises `DataError` naming the file."""
    path = Path(path)
    arrays = _read(path)
    info = info_for_file(path.stem)
    if info is not None and info.multi_label:
        raise DataError(f"{path}: {path.stem} is multi-label ({len(info.labels)} findings per image); "
                        "medtk trains single-label classifiers")
    images, labels = {}, {}
    for split in SPLITS:
        images[split] = _check_images(path, split, arrays[f"{split}_images"])
        labels[split] = _check_labels(path, split, arrays[f"{split}_labels"], len(images[split]))
    top = max(int(labels[split].max(initial=-1)) for split in SPLITS)
    class_names = info.labels if info is not None else tuple(str(k) for k in range(top + 1))
    if top >= len(class_names):
        raise DataError(f"{path}: label {top} is out of range for the {len(class_names)} classes of {path.stem} "
                        f"({', '.join(class_names)})")
    offsets = np.cumsum([0] + [len(images[split]) for split in SPLITS])

    def load(index: int) -> np.ndarray:
        k = int(np.searchsorted(offsets, index, side="right")) - 1
        return decode_image(images[SPLITS[k]][index - offsets[k]])

    ids = [f"{split}[{i}]" for split in SPLITS for i in range(len(images[split]))]
    shapes = [shape_name(images[split].shape[1:]) for split in SPLITS for _ in range(len(images[split]))]
    return Catalog(
        source=source or str(path),
        class_names=tuple(class_names),
        ids=ids,
        labels=np.concatenate([labels[split] for split in SPLITS]),
        load=load,
        given_split=np.repeat(np.arange(len(SPLITS)), [len(images[split]) for split in SPLITS]),
        finding=info.finding if info is not None else None,
        shapes=shapes,
    )


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such .npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in KEYS if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing keys {', '.join(missing)}; a MedMNIST-layout file has "
                                f"{', '.join(KEYS)}")
            return {key: archive[key] for key in KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from None


def _check_images(path: Path, split: str, images: np.ndarray) -> np.ndarray:
    key = f"{split}_images"
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise DataError(f"{path}: {key} has shape {images.shape}; expected (N, H, W) or (N, H, W, 3)")
    if images.dtype == np.bool_ or images.dtype.kind not in "uif":
        raise DataError(f"{path}: {key} has unsupported dtype {images.dtype}; expected integer or float pixels")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        bad = int((~np.isfinite(images.reshape(len(images), -1))).any(axis=1).sum())
        raise DataError(f"{path}: {key} contains NaN or infinite values in {bad} images")
    return images


def _check_labels(path: Path, split: str, labels: np.ndarray, count: int) -> np.ndarray:
    key = f"{split}_labels"
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise DataError(f"{path}: {key} has shape {labels.shape} (multi-label); medtk trains single-label "
                        "classifiers and expects one label per image")
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.ndim != 1:
        raise DataError(f"{path}: {key} has shape {labels.shape}; expected (N,) or (N, 1)")
    if len(labels) != count:
        raise DataError(f"{path}: {split}_images has {count} images but {key} has {len(labels)} labels")
    if labels.dtype.kind not in "uif" or (labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0)):
        raise DataError(f"{path}: {key} must hold integer class indices, got dtype {labels.dtype}")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path}: {key} has label {labels.min():g}, out of range (labels start at 0)")
    return labels.astype(np.int64)

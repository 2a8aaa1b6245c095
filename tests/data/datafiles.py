"""Real files for the data-source tests: images written with OpenCV, DICOM from pydicom's test data,
npz files with numpy. (A plain module, not conftest, so tests can import it by a unique name.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.data import get_testdata_file

# CT_small.dcm / MR_small.dcm carry these (fake) patient identifiers in their headers.
DICOM_IDENTIFIERS = ("CompressedSamples", "1CT1", "4MR1")


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """Write a real image file (format from the suffix); RGB arrays are given in RGB order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), pixels), path
    return path


def random_image(rng: np.random.Generator, shape=(24, 24), dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    return rng.integers(0, top, size=shape, endpoint=True, dtype=dtype)


def make_class_folder(root: Path, counts: dict[str, int], seed: int = 0, suffix: str = ".png") -> Path:
    """root/<class>/<class>_<i>.png with `counts[class]` real images."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        for i in range(count):
            write_image(root / name / f"{name}_{i:03d}{suffix}", random_image(rng))
    return root


def copy_dicom(name: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(get_testdata_file(name), target)
    return target


def write_monochrome1(target: Path) -> Path:
    """CT_small.dcm re-labelled MONOCHROME1 (pydicom ships no MONOCHROME1 file with this build)."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.PhotometricInterpretation = "MONOCHROME1"
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(target)
    return target


def write_npz(path: Path, sizes=(40, 10, 12), num_classes=2, shape=(8, 8), seed=0, **overrides) -> Path:
    """A small MedMNIST-layout file; `overrides` replace or add arrays (e.g. val_labels=...)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % num_classes).reshape(n, 1).astype(np.uint8)
    arrays.update(overrides)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path

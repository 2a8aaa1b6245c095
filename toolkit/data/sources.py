"""SRC string -> the source that reads it; an unknown form lists the valid ones."""

from __future__ import annotations

from pathlib import Path

from medtk.data.catalog import Catalog
from medtk.data.folder import load_folder
from medtk.data.manifest import load_manifest
from medtk.data.medmnist import load_medmnist
from medtk.data.npz import load_npz
from medtk.data.prepared.catalog import load_prepared
from medtk.data.prepared.reader import is_prepared
from medtk.data.synthetic import load_synthetic
from medtk.errors import DataError

VALID_FORMS = (
    "a MedMNIST-layout .npz file, a folder of class subfolders (optionally train/val/test), "
    "a CSV manifest (path,label[,patient_id]), a prepared dataset (medtk prepare), 'synthetic' or 'synthetic:N', 'medmnist:NAME[@SIZE]'"
)


def resolve_source(src: str) -> str:
    """A file or folder source as an absolute path, so a saved run works from any working directory."""
    if src == "synthetic" or src.startswith(("synthetic:", "medmnist:")):
        return src
    path = Path(src).expanduser()
    return str(path.resolve()) if path.exists() else src


def open_source(src: str) -> Catalog:
    if src == "synthetic":
        return load_synthetic()
    if src.startswith("synthetic:"):
        return load_synthetic(src.partition(":")[2])
    if src.startswith("medmnist:"):
        return load_medmnist(src.partition(":")[2])
    path = Path(src).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path, source=src)
    if suffix == ".csv":
        return load_manifest(path, source=src)
    if path.is_dir() and is_prepared(path):
        return load_prepared(path, source=src)
    if path.is_dir():
        return load_folder(path, source=src)
    problem = "does not exist" if not path.exists() else "is not a supported data source"
    raise DataError(f"{src}: {problem}; expected {VALID_FORMS}")

"""Data sources: one entry point, `load_dataset(SRC)`, for every form a dataset comes in.

SRC forms: a MedMNIST-layout `.npz` file; `medmnist:NAME[@SIZE]` (local, cached or downloaded and
md5-checked); a folder of class subfolders, optionally split into train/val/test; a CSV manifest
`path,label[,patient_id]`; `synthetic[:N]` (generated chest-like phantoms with lesion masks); a prepared
dataset folder (`medtk prepare`, `medtk.data.prepared`).
numpy, OpenCV, pydicom, protobuf and google-crc32c only: this package works in the base install (no TensorFlow).
"""

from medtk.data.base import Dataset, Skipped, Split
from medtk.data.describe import describe
from medtk.data.loader import load_dataset
from medtk.data.sources import VALID_FORMS, resolve_source
from medtk.data.splitfile import save_split

__all__ = ["Dataset", "Skipped", "Split", "VALID_FORMS", "describe", "load_dataset", "resolve_source", "save_split"]

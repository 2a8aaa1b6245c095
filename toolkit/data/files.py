"""Naming and loading image files: ids relative to the data root, a loader by index.

Which files in a folder are images is the runtime's rule (`medtk.runtime.inputs.find_images`, with
`max_files=None` for a data folder), so `medtk predict DIR` and training see the same files.
"""

from __future__ import annotations

from pathlib import Path

from medtk.runtime.imaging import decode_image


def relative_id(path: Path, root: Path) -> str:
    """The item id: the path relative to the data root, with forward slashes (never a DICOM header field)."""
    return path.relative_to(root).as_posix()


def file_loader(files: list[Path]):
    return lambda index: decode_image(files[index])

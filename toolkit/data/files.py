"""Finding image files and naming them: what counts as an image, and ids relative to the data root."""

from __future__ import annotations

from pathlib import Path

from medtk.runtime.imaging import DICOM_SUFFIXES, IMAGE_SUFFIXES, decode_image, is_dicom


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted, hidden files skipped); DICOM files may lack a suffix."""
    found = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES or suffix in DICOM_SUFFIXES or (not suffix and is_dicom(path)):
            found.append(path)
    return found


def relative_id(path: Path, root: Path) -> str:
    """The item id: the path relative to the data root, with forward slashes (never a DICOM header field)."""
    return path.relative_to(root).as_posix()


def file_loader(files: list[Path]):
    return lambda index: decode_image(files[index])

"""What the user passes in -> what the model's input tensor holds, with runtime errors on bad input.

Decoding and resizing are `imaging.py`'s (shared with training); this module maps its errors, and
those of the header check (`check_header`), to `RuntimeInputError` (the classifier stays usable after
one), finds the images in a folder (`find_images`, the data sources' rule too) and casts raw 0..255 pixels to the input tensor's dtype:
`uint8` for int8 models, `float32` otherwise, quantized if the model asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medtk.errors import ConfigError, ImageDecodeError, RuntimeInputError
from medtk.runtime.dicom import read_dicom_dataset
from medtk.runtime.dicom_header import check_dicom
from medtk.runtime.headers import DICOM_SUFFIXES, IMAGE_SUFFIXES, ImageHeader, is_dicom
from medtk.runtime.imaging import read_image
from medtk.runtime.intensity import FULL_RANGE
from medtk.runtime.limits import check_max_pixels
from medtk.runtime.pixels import Decoded
from medtk.runtime.probe import read_header
from medtk.runtime.signature import Tensor

# `medtk predict DIR`: more files than this is refused unless --max-files says otherwise.
DEFAULT_MAX_FILES = 10_000


def load_image(source: str | Path | bytes | np.ndarray, max_pixels: int, mapping: str = FULL_RANGE) -> np.ndarray:
    """Decoded uint8 HxW or HxWx3 pixels; any unreadable input is a one-line `RuntimeInputError`."""
    return load_decoded(source, max_pixels, mapping).pixels


def load_decoded(source: str | Path | bytes | np.ndarray | Decoded, max_pixels: int, mapping: str = FULL_RANGE,
                 name: str | None = None) -> Decoded:
    """Decoded pixels and the source's kind (bit depth, photometric, modality), mapped by `mapping`.

    `source`: a path, the file's bytes (decoded in memory; `name` says what messages call it, default
    "the image"), a numpy array, or an already `Decoded` image. The header is checked before anything is
    decoded (`check_header`'s rules); the memory it takes is `imaging.read_image`'s (at most about the
    encoded size plus 12 bytes per pixel).
    """
    if isinstance(source, Decoded):
        return source
    if not isinstance(source, (str, Path, bytes, np.ndarray)):
        raise RuntimeInputError(f"expected an image path, the file's bytes or a numpy array, got {type(source).__name__}")
    try:
        return read_image(source, max_pixels=max_pixels, mapping=mapping, name=name)
    except ImageDecodeError as error:
        raise RuntimeInputError(str(error)) from None


def load_dicom_dataset(dataset: Any, name: str, max_pixels: int, mapping: str = FULL_RANGE) -> Decoded:
    """`load_decoded` for a DICOM data set the caller has already read whole (and needs the header of)."""
    try:
        return read_dicom_dataset(dataset, name, max_pixels, mapping)
    except ImageDecodeError as error:
        raise RuntimeInputError(str(error)) from None


def check_header(source: str | Path | bytes | Any, max_pixels: int, name: str | None = None) -> ImageHeader:
    """The image's header when the runtime will decode it, from the header alone; else `RuntimeInputError`.

    `source`: a path, the file's bytes, or a pydicom data set (with or without its pixel data, e.g. one
    a DICOM listener just received; `name` names it in messages). Refused, in one line that names the
    image and never quotes a header's text: more than `max_pixels` pixels, more than one frame (a DICOM
    NumberOfFrames > 1, a multi-page TIFF, an animated PNG), SamplesPerPixel other than 1 or 3, a bit depth
    or photometric interpretation the runtime does not decode, a DICOM transfer syntax it cannot decode
    here, native Pixel Data whose length does not match the header, a malformed value in any of these.
    """
    try:
        if isinstance(source, (str, Path, bytes)):
            return read_header(source, max_pixels, name)
        return check_dicom(source, name or "the data set", check_max_pixels(max_pixels))
    except ImageDecodeError as error:
        raise RuntimeInputError(str(error)) from None


def find_images(folder: Path, max_files: int | None = DEFAULT_MAX_FILES) -> list[Path]:
    """Image files under `folder`: recursive, sorted, hidden entries skipped; image suffixes, DICOM by suffix
    or (suffixless) by its 'DICM' magic. More than `max_files` is a `ConfigError` before anything runs;
    `None` finds them all (a training data folder, `medtk.data`).

    The one definition of "the images in a folder", for `medtk predict DIR` and the data sources alike.
    """
    if max_files is not None and max_files < 1:
        raise ConfigError(f"max_files={max_files}: must be at least 1")
    found: list[Path] = []
    for path in sorted(Path(folder).rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES or suffix in DICOM_SUFFIXES or (not suffix and is_dicom(path)):
            found.append(path)
            if max_files is not None and len(found) > max_files:
                raise ConfigError(
                    f"{folder}: more than {max_files} image files; pass a smaller folder or raise --max-files"
                )
    return found


def to_tensor(pixels: np.ndarray, tensor: Tensor) -> np.ndarray:
    """Raw 0..255 pixels (S, S, C), uint8 or float, -> a [1, S, S, C] array of the tensor's dtype."""
    batch = pixels[None] if pixels.ndim == 3 else pixels
    if np.issubdtype(tensor.dtype, np.floating):
        return batch.astype(tensor.dtype, copy=False)
    if tensor.quantized and (tensor.scale != 1.0 or tensor.zero_point != 0):
        batch = batch.astype(np.float32) / tensor.scale + tensor.zero_point
    elif batch.dtype == tensor.dtype:
        return batch
    info = np.iinfo(tensor.dtype)
    return np.clip(np.rint(batch), info.min, info.max).astype(tensor.dtype)


def from_tensor(values: np.ndarray, tensor: Tensor) -> np.ndarray:
    """An output tensor as float32, dequantized when the model left it quantized."""
    if tensor.quantized:
        return (values.astype(np.float32) - tensor.zero_point) * np.float32(tensor.scale)
    return values.astype(np.float32, copy=False)

"""What the user passes in -> what the model's input tensor holds, with runtime errors on bad input.

Decoding and resizing are `imaging.py`'s (shared with training); this module only maps its errors to
`RuntimeInputError` (the classifier stays usable after one) and casts raw 0..255 pixels to the
input tensor's dtype: `uint8` for int8 models, `float32` otherwise, quantized if the model asks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtk.errors import ImageDecodeError, RuntimeInputError
from medtk.runtime.imaging import decode_image
from medtk.runtime.signature import Tensor


def load_image(source: str | Path | np.ndarray, max_pixels: int) -> np.ndarray:
    """Decoded uint8 HxW or HxWx3 pixels; any unreadable input is a one-line `RuntimeInputError`."""
    if not isinstance(source, (str, Path, np.ndarray)):
        raise RuntimeInputError(f"expected an image path or a numpy array, got {type(source).__name__}")
    try:
        return decode_image(source, max_pixels=max_pixels)
    except ImageDecodeError as error:
        raise RuntimeInputError(str(error)) from None


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

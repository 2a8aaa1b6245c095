"""Pictures for the report as inline PNG data URIs (OpenCV encodes; nothing is fetched or linked)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from medtk.errors import ModelError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PREFIX = "data:image/png;base64,"


def png_bytes_uri(data: bytes, name: str) -> str:
    if not data.startswith(PNG_SIGNATURE):
        raise ModelError(f"{name}: not a PNG file")
    return PNG_PREFIX + base64.b64encode(data).decode("ascii")


def file_uri(path: Path) -> str:
    return png_bytes_uri(Path(path).read_bytes(), str(path))


def array_uri(pixels: np.ndarray) -> str:
    """uint8 gray (H, W) or RGB (H, W, 3) -> PNG data URI."""
    import cv2

    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise ModelError(f"could not encode a {pixels.shape} image as PNG")
    return png_bytes_uri(encoded.tobytes(), "encoded image")


def fit_within(pixels: np.ndarray, largest: int) -> np.ndarray:
    """Shrink (area interpolation) so neither side exceeds `largest`; small images stay as they are."""
    import cv2

    height, width = pixels.shape[:2]
    scale = largest / max(height, width)
    if scale >= 1.0:
        return pixels
    return cv2.resize(pixels, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def enlarge(pixels: np.ndarray, target: int) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor toward `target` px: the real pixels stay visible."""
    import cv2

    factor = max(1, int(np.ceil(target / max(pixels.shape[:2]))))
    if factor == 1:
        return pixels
    height, width = pixels.shape[:2]
    return cv2.resize(pixels, (width * factor, height * factor), interpolation=cv2.INTER_NEAREST)


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels

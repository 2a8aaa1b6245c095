"""What the runtime accepts, decided from a header before any pixel is decoded: one 2-D image within the pixel limit.

Every decoder (rasters and DICOM, files, bytes and data sets) applies `check_image` to the header it read,
so a caller - `medtk predict`, training, `medtk serve` over C-STORE or HTTP - gets the same answer for
the same image. The runtime classifies one 2-D image: a DICOM with NumberOfFrames > 1, a multi-page
TIFF or an animated PNG is refused, never reduced to one of its frames.
"""

from __future__ import annotations

from medtk.errors import ConfigError, ImageDecodeError
from medtk.runtime.headers import ImageHeader

__all__ = ["DEFAULT_MAX_PIXELS", "check_image", "check_limit", "check_max_pixels"]

# 100 megapixels: larger than any radiograph, small enough to refuse a decompression bomb.
DEFAULT_MAX_PIXELS = 100_000_000


def check_max_pixels(max_pixels: int) -> int:
    """`max_pixels` itself: a whole number of at least 1 (0 is not "no limit" nor "the default")."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"max_pixels={max_pixels!r} must be a whole number of at least 1")
    return max_pixels


def check_limit(width: int, height: int, frames: int, name: str, max_pixels: int) -> None:
    """Refuse a size that is not an image, or one over `max_pixels` (all frames counted)."""
    if width < 1 or height < 1 or frames < 1:
        raise ImageDecodeError(f"{name}: header says {width}x{height} pixels x {frames} frames; not an image")
    if width * height * frames > max_pixels:
        frames_text = f" x {frames} frames" if frames > 1 else ""
        raise ImageDecodeError(f"{name}: {width}x{height} pixels{frames_text} is over the limit of {max_pixels}")


def check_image(header: ImageHeader, name: str, max_pixels: int) -> ImageHeader:
    """`header` when it describes one 2-D image within `max_pixels`; else a one-line `ImageDecodeError`."""
    check_limit(header.width, header.height, header.frames, name, check_max_pixels(max_pixels))
    if header.frames > 1:
        raise ImageDecodeError(
            f"{name}: {header.frames} frames; medtk classifies one 2-D image (send each frame as an image of its own)"
        )
    return header

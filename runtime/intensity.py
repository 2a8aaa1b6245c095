"""The intensity mapping: how stored pixel values become the 0..255 the model was trained on.

It is a property of the model, recorded in its metadata (`ModelMetadata.intensity`) and applied by the
same code in training and on the device (imaging.py and dicom.py call `to_uint8`). Two mappings exist:

`full-range/1` (models exported with metadata schema 3 and later): deterministic, never per image.
- uint8: kept.
- unsigned integers with a known bit depth (uint16 files: 16; DICOM: BitsStored) map the full stored
  range linearly onto 0..255, rounding half up: v -> (v * 255 + (2^b - 1) // 2) // (2^b - 1). An
  8-bit image copied to 16 bits by x257 maps back to exactly the same 8-bit values.
- other integer arrays (int16, int32, int64 ...): values in 0..255 are taken as 8-bit; anything else is
  refused (its bit depth is ambiguous: pass uint16 with the full 16-bit range, or the DICOM file).
- floats: finite values only; all in [0, 1] -> x255 and rounded; else all in [0, 255] -> rounded;
  anything else is refused. (An image whose values all lie in [0, 1] is read as a [0, 1] image.)
- DICOM (dicom.py): modality LUT / rescale, then the VOI LUT or window when the file has one, else
  the stored range (BitsStored, signed or not) through the modality LUT, mapped linearly onto 0..255.

`minmax-per-image` (models exported before schema 3, whose training did this): non-uint8 pixels
min-max scaled per image. Kept so those models still see what their training saw; such predictions
carry a warning for non-8-bit input, whose label then depends on the image's contrast.

Each rule maps every value on its own (the min-max once the image's range is known), so it is applied by
`lookup.per_value`: a table over the values for 8/16-bit integers, blocks of rows otherwise; never a
float64 copy of the whole image.

The metadata also records what training saw (`bit_depths`, `photometric`, `modalities`;
`describe_intensity` computes it), so an input of another kind gets a warning in
`Prediction.warnings` instead of passing silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from medtk.errors import ImageDecodeError
from medtk.runtime.headers import COLOUR, GRAY, ImageKind  # ImageKind lives with the header readers
from medtk.runtime.lookup import per_value
from medtk.runtime.probe import probe

FULL_RANGE = "full-range/1"
MINMAX = "minmax-per-image"
MAPPINGS = (FULL_RANGE, MINMAX)


@dataclass(frozen=True)
class Intensity:
    """The mapping a model's training used and the kinds of images it saw (empty = not recorded)."""

    mapping: str = FULL_RANGE
    bit_depths: tuple[int, ...] = ()
    photometric: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Intensity":
        if not isinstance(data, dict):
            raise TypeError(f"intensity must be an object, got {type(data).__name__}")
        mapping = str(data.get("mapping", FULL_RANGE))
        if mapping not in MAPPINGS:
            raise ValueError(f"intensity mapping {mapping!r} is not one this medtk applies ({', '.join(MAPPINGS)})")
        return cls(
            mapping=mapping,
            bit_depths=tuple(sorted(int(depth) for depth in data.get("bit_depths", ()))),
            photometric=tuple(sorted(str(value) for value in data.get("photometric", ()))),
            modalities=tuple(sorted(str(value) for value in data.get("modalities", ()))),
        )

    def warnings(self, kind: ImageKind) -> tuple[str, ...]:
        """What differs between this input and the training data, one sentence each."""
        found = []
        if self.mapping == MINMAX and kind.bit_depth != 8:
            found.append(
                f"{kind.describe()} input min-max scaled per image: this model was exported before medtk recorded "
                f"its intensity mapping, so its label can depend on the image's contrast"
            )
        if self.bit_depths and kind.bit_depth is not None and kind.bit_depth not in self.bit_depths:
            depths = "/".join(str(depth) for depth in self.bit_depths)
            found.append(f"input is {kind.bit_depth}-bit; the model was trained on {depths}-bit images")
        if self.photometric and kind.photometric and kind.photometric not in self.photometric:
            found.append(f"input is {kind.photometric}; the model was trained on {'/'.join(self.photometric)} images")
        if self.modalities and kind.modality and kind.modality not in self.modalities:
            found.append(f"input modality is {kind.modality}; the model was trained on {'/'.join(self.modalities)}")
        return tuple(found)


def describe_intensity(sources: Iterable[ImageKind | str | Path | np.ndarray]) -> Intensity:
    """The `Intensity` of a training set: the full-range mapping and every kind of image in `sources`.

    Sources are `ImageKind`s (e.g. `read_image(path).kind` from a pass that decodes anyway), files
    (only their headers are read) or arrays (their dtype and channels). Training calls this and passes
    the result to the exported metadata (compress's `model_metadata(intensity=...)`).
    """
    kinds = set()
    for source in sources:
        if isinstance(source, ImageKind):
            kinds.add(source)
        elif isinstance(source, np.ndarray):
            kinds.add(array_kind(source))
        else:
            kinds.add(probe(Path(source)).kind)
    return Intensity(
        mapping=FULL_RANGE,
        bit_depths=tuple(sorted({kind.bit_depth for kind in kinds if kind.bit_depth is not None})),
        photometric=tuple(sorted({kind.photometric for kind in kinds if kind.photometric})),
        modalities=tuple(sorted({kind.modality for kind in kinds if kind.modality})),
    )


def array_kind(pixels: np.ndarray) -> ImageKind:
    """The kind of an in-memory image (a stack of images too): bit depth from its dtype, gray or RGB from its last axis."""
    colour = pixels.ndim >= 3 and pixels.shape[-1] in (3, 4)
    if pixels.dtype.kind == "f":
        depth = None
    elif pixels.dtype == np.uint16:
        depth = 16
    else:
        depth = 8  # uint8, or another integer type holding 0..255 (anything else is refused by to_uint8)
    return ImageKind(bit_depth=depth, photometric=COLOUR if colour else GRAY)


def to_uint8(image: np.ndarray, mapping: str = FULL_RANGE, bit_depth: int | None = None) -> np.ndarray:
    """Pixels -> uint8 by `mapping` (the module docstring's rule). `bit_depth` = stored bits when the source
    says (DICOM BitsStored); an unsigned array without it uses its dtype's full range."""
    if image.dtype == np.uint8 and bit_depth in (None, 8):
        return image
    if image.dtype == np.bool_ or image.dtype.kind not in "uif":
        raise ImageDecodeError(f"unsupported pixel type {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ImageDecodeError("image contains NaN or infinite values")
    if mapping == MINMAX:
        return _minmax(image)
    if mapping != FULL_RANGE:
        raise ImageDecodeError(f"intensity mapping {mapping!r} is not one of {', '.join(MAPPINGS)}")
    if image.dtype.kind == "f":
        return _float(image)
    if bit_depth is None and image.dtype == np.uint16:
        bit_depth = 16
    if bit_depth is None:
        return _small_integers(image)
    if not 1 <= bit_depth <= 32:
        raise ImageDecodeError(f"unsupported bit depth {bit_depth}")
    top = (1 << bit_depth) - 1
    return per_value(image, lambda values: _full_range(values, top))


def _full_range(values: np.ndarray, top: int) -> np.ndarray:
    """v -> (v * 255 + top // 2) // top, v clipped to 0..top: exact integer arithmetic, rounding half up."""
    values = np.clip(values.astype(np.int64), 0, top)
    return ((values * 255 + top // 2) // top).astype(np.uint8)


def _float(image: np.ndarray) -> np.ndarray:
    if image.size == 0:
        return np.zeros(image.shape, np.uint8)
    low, high = float(image.min()), float(image.max())
    if low >= 0.0 and high <= 1.0:
        return per_value(image, lambda values: np.round(values.astype(np.float64) * 255.0).astype(np.uint8))
    if low >= 0.0 and high <= 255.0:
        return per_value(image, lambda values: np.round(values.astype(np.float64)).astype(np.uint8))
    raise ImageDecodeError(
        f"float pixels in [{low:g}, {high:g}]: medtk reads float images in [0, 1] (x255) or [0, 255] (kept); "
        f"scale them, or pass the integer pixels or the file"
    )


def _small_integers(image: np.ndarray) -> np.ndarray:
    low, high = (int(image.min()), int(image.max())) if image.size else (0, 0)
    if low >= 0 and high <= 255:
        return image.astype(np.uint8)
    raise ImageDecodeError(
        f"{image.dtype} pixels in [{low}, {high}]: their bit depth is ambiguous; pass uint8, uint16 "
        f"(the full 16-bit range) or the image file (DICOM: BitsStored is used)"
    )


def _minmax(image: np.ndarray) -> np.ndarray:
    """The schema-2 rule: min-max scaled per image."""
    low, high = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
    return per_value(image, lambda values: scale_minmax(values, low, high))


def scale_minmax(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """`values` scaled from [low, high] onto 0..255 (all 0 when high <= low): the schema-2 arithmetic."""
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values.astype(np.float64) - low) * (255.0 / (high - low))).astype(np.uint8)

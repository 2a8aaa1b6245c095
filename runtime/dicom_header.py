"""A DICOM header -> the runtime's `ImageHeader`, and everything about the image that header decides.

`check_dicom` runs before any pixel is decoded, for every DICOM caller: files and bytes (dicom_file.py),
a data set read whole (`medtk serve`'s spooled instances), and `medtk.runtime.check_header` (serve's
C-STORE check). It refuses, in one line naming the element and the file: more pixels than the limit, more
than one frame, SamplesPerPixel other than 1 or 3, bit depths and photometric interpretations this
runtime does not decode, malformed rescale, modality LUT or palette elements, a transfer syntax it cannot
decode here, and native Pixel Data whose length is not what Rows x Columns x SamplesPerPixel x
BitsAllocated/8 x frames says. Values come through
dicom_fields.py, so a malformed one is named, never quoted; messages quote only numbers and enumerated
values (MONOCHROME2, a transfer syntax's registered name).
"""

from __future__ import annotations

from typing import Any

from medtk.errors import ImageDecodeError
from medtk.runtime.dicom_fields import code, is_valid, lut_item_valid, numbers, whole_number
from medtk.runtime.headers import ImageHeader, ImageKind
from medtk.runtime.limits import check_image

__all__ = ["PHOTOMETRIC", "check_dicom", "check_pixel_length", "dicom_header"]

# The photometric interpretations pydicom turns into gray or RGB pixels here, with their samples per pixel
PHOTOMETRIC = {
    "MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1,
    "RGB": 3, "YBR_FULL": 3, "YBR_FULL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3, "YBR_RCT": 3,
}
_PALETTE_DESCRIPTORS = tuple(f"{colour}PaletteColorLookupTableDescriptor" for colour in ("Red", "Green", "Blue"))
_UNDEFINED_LENGTH = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010


def dicom_header(dataset: Any, name: str) -> ImageHeader:
    """Rows, Columns, NumberOfFrames, SamplesPerPixel, bit depths and PhotometricInterpretation of a pydicom
    data set, refused when malformed or not decodable here; Modality kept when it is a valid code string."""
    rows, columns = (whole_number(dataset, keyword, name) for keyword in ("Rows", "Columns"))
    if rows is None or columns is None:
        raise ImageDecodeError(f"{name}: DICOM header without Rows and Columns")
    frames = whole_number(dataset, "NumberOfFrames", name, 1) or 1
    samples = whole_number(dataset, "SamplesPerPixel", name, 1)
    allocated = whole_number(dataset, "BitsAllocated", name, 0)
    stored = whole_number(dataset, "BitsStored", name, allocated)
    for keyword in ("HighBit", "PixelRepresentation", "PlanarConfiguration"):
        whole_number(dataset, keyword, name)  # read by pydicom's decoders: checked here
    photometric = code(dataset, "PhotometricInterpretation", name)
    if samples not in (1, 3):
        raise ImageDecodeError(f"{name}: SamplesPerPixel {samples} is not 1 (gray) or 3 (colour)")
    if allocated not in (1, 8, 16, 32) or not 1 <= stored <= allocated:
        raise ImageDecodeError(f"{name}: BitsAllocated {allocated} / BitsStored {stored} are not usable")
    if photometric not in PHOTOMETRIC:
        raise ImageDecodeError(
            f"{name}: PhotometricInterpretation is missing or not one medtk decodes ({', '.join(PHOTOMETRIC)})"
        )
    if PHOTOMETRIC[photometric] != samples or (photometric == "PALETTE COLOR" and allocated not in (8, 16)):
        raise ImageDecodeError(f"{name}: {photometric} with SamplesPerPixel {samples}, BitsAllocated {allocated}")
    kind = ImageKind(bit_depth=stored, photometric=photometric, modality=_modality(dataset, name))
    return ImageHeader(format="dicom", width=columns, height=rows, frames=frames, kind=kind)


def check_dicom(dataset: Any, name: str, max_pixels: int, pixel_length: int | None = None) -> ImageHeader:
    """The data set's header when its image can be decoded here (the module docstring's list); else
    `ImageDecodeError`. `pixel_length`: the Pixel Data element's length when the data set stops before it."""
    header = check_image(dicom_header(dataset, name), name, max_pixels)
    _check_transforms(dataset, name, header.kind.photometric)
    compressed = _check_transfer_syntax(dataset, name)
    if not compressed:
        check_pixel_length(dataset, name, pixel_length)
    return header


def check_pixel_length(dataset: Any, name: str, length: int | None = None) -> None:
    """Native Pixel Data holds what the header describes; `length` is the element's (read from the data
    set when None; nothing to check when it has no Pixel Data).

    Trailing bytes short of one more frame are padding (some writers pad to a block size; pydicom reads
    such files with an "excess padding" warning) and are allowed; a frame's worth or more means the
    header does not describe the pixels (a 16x16 header over 256x256 pixels would read as 256 frames)."""
    from pydicom.pixels.utils import get_expected_length

    if length is None:
        length = _pixel_data_length(dataset)
        if length is None:
            return
    if length == _UNDEFINED_LENGTH:
        raise ImageDecodeError(f"{name}: Pixel Data is encapsulated but the transfer syntax is not compressed")
    expected = get_expected_length(dataset)
    frame = max(1, expected // (whole_number(dataset, "NumberOfFrames", name, 1) or 1))
    if not expected <= length < expected + max(frame, 2):
        raise ImageDecodeError(
            f"{name}: Pixel Data holds {length} bytes; Rows x Columns x SamplesPerPixel x BitsAllocated/8 "
            f"x frames is {expected}"
        )


def _pixel_data_length(dataset: Any) -> int | None:
    from pydicom.dataelem import RawDataElement

    if _PIXEL_DATA not in dataset:
        return None
    element = dataset.get_item(_PIXEL_DATA, keep_deferred=True)
    if isinstance(element, RawDataElement):  # a truncated file's value is shorter than its declared length
        return element.length if element.value is None or element.length == _UNDEFINED_LENGTH else len(element.value)
    return _UNDEFINED_LENGTH if element.is_undefined_length else len(element.value or b"")


def _check_transfer_syntax(dataset: Any, name: str) -> bool:
    """Refuse a transfer syntax whose pixels cannot be decoded here; True when it is compressed."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    meta = getattr(dataset, "file_meta", None)
    text = code(meta, "TransferSyntaxUID", name) if meta is not None else None
    if text is None:
        raise ImageDecodeError(f"{name}: no TransferSyntaxUID in the file meta information")
    syntax = UID(text)
    if not syntax.is_transfer_syntax:
        raise ImageDecodeError(f"{name}: TransferSyntaxUID is not a transfer syntax medtk decodes")
    if not syntax.is_compressed:
        return False
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ImageDecodeError(f"{name}: pixel data in {syntax.name} cannot be decoded by pydicom") from None
    if not decoder.is_available:
        raise ImageDecodeError(f"{name}: pixel data in {syntax.name} needs a decoder that is not installed")
    return True


def _check_transforms(dataset: Any, name: str, photometric: str) -> None:
    """The elements that map pixels (rescale, modality LUT, palette) are readable: refused here, before
    pydicom converts them (and would quote a malformed value)."""
    rescale = ("RescaleSlope", "RescaleIntercept")
    for keyword in rescale if all(keyword in dataset for keyword in rescale) else ():  # pydicom uses them together
        numbers(dataset, keyword, name)
    if "ModalityLUTSequence" in dataset and (
        not is_valid(dataset, "ModalityLUTSequence") or not all(lut_item_valid(item) for item in dataset.ModalityLUTSequence)
    ):
        raise ImageDecodeError(f"{name}: ModalityLUTSequence has a malformed LUTDescriptor or LUTData")
    for keyword in _PALETTE_DESCRIPTORS if photometric == "PALETTE COLOR" else ():
        if len(numbers(dataset, keyword, name) or ()) != 3:
            raise ImageDecodeError(f"{name}: PALETTE COLOR without a three-value {keyword}")


def _modality(dataset: Any, name: str) -> str:
    """Modality when it is a valid code string (CS: upper-case letters, digits, space, underscore), else ""."""
    try:
        return code(dataset, "Modality", name) or ""
    except ImageDecodeError:
        return ""

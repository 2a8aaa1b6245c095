"""The DICOM elements the runtime decodes with, read from their raw bytes so a malformed value is never quoted.

pydicom converts an element when it is first read; a value that does not fit its VR (a name in
NumberOfFrames, text where Rows should be, a date in a window) makes it log and warn that value and
raise an error quoting it. A broken or hostile header would put patient data into medtk's messages and
`medtk serve`'s log that way. Every element the runtime, and pydicom's pixel functions after it, read
is first checked here from its raw bytes: its VR (the dictionary's; UN is read as that), its length, and
pydicom's own validator in its raising mode, which logs nothing. A malformed value is a one-line
`ImageDecodeError` naming the element and the file, never the value; once checked, pydicom converts it
without a word.
"""

from __future__ import annotations

import struct
from typing import Any

from medtk.errors import ImageDecodeError

__all__ = ["code", "is_valid", "lut_item_valid", "numbers", "whole_number"]

_BINARY = {"US": "H", "SS": "h"}
_TEXT_VRS = ("IS", "DS", "CS", "UI")


def whole_number(dataset: Any, keyword: str, name: str, default: int | None = None) -> int | None:
    """The single value of a US or IS element; `default` when it is absent or empty."""
    values = _values(dataset, keyword, name)
    if not values:
        return default
    if len(values) > 1:
        raise _malformed(keyword, name, f"holds {len(values)} values, not one")
    number = _float(values[0], keyword, name)
    if not number.is_integer():
        raise _malformed(keyword, name, "is not a whole number")
    return int(number)


def numbers(dataset: Any, keyword: str, name: str) -> tuple[float, ...] | None:
    """Every value of a DS, IS, US or SS element as floats; None when it is absent."""
    values = _values(dataset, keyword, name)
    return None if values is None else tuple(_float(value, keyword, name) for value in values)


def code(dataset: Any, keyword: str, name: str) -> str | None:
    """The single value of a CS or UI element, without padding; None when it is absent or empty."""
    values = _values(dataset, keyword, name)
    if not values:
        return None
    if len(values) > 1:
        raise _malformed(keyword, name, f"holds {len(values)} values, not one")
    return str(values[0]).strip()


def is_valid(dataset: Any, keyword: str) -> bool:
    """Whether `keyword` is absent or readable, for elements the runtime does without when they are broken."""
    try:
        _values(dataset, keyword, "")
    except ImageDecodeError:
        return False
    return True


def lut_item_valid(item: Any) -> bool:
    """A modality or VOI LUT item with a three-value LUTDescriptor and LUTData stored as LUT data (US/OW/SS:
    numbers, nothing to quote; its value is not read, it may be large)."""
    from pydicom.datadict import tag_for_keyword

    if "LUTData" not in item or not is_valid(item, "LUTDescriptor"):
        return False
    data = item.get_item(tag_for_keyword("LUTData"), keep_deferred=True)
    return data.VR in (None, "UN", "US", "OW", "SS") and len(numbers(item, "LUTDescriptor", "") or ()) == 3


def _values(dataset: Any, keyword: str, name: str) -> list | None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = tag_for_keyword(keyword)
    if tag is None or tag not in dataset:
        return None
    element = dataset.get_item(tag)
    expected = dictionary_VR(tag).split(" or ")
    vr = element.VR if element.VR not in (None, "UN") else expected[0]
    if vr not in expected:
        raise _malformed(keyword, name, f"is not encoded as {' or '.join(expected)}")
    if not isinstance(element, RawDataElement):  # converted already (a data set built in memory)
        values = _converted(element.value)
        return _validated([str(value) for value in values], vr, keyword, name) if vr in _TEXT_VRS else values
    raw = element.value or b""
    if vr in _BINARY:
        if len(raw) % 2:
            raise _malformed(keyword, name, "has an odd length")
        order = "<" if element.is_little_endian else ">"
        return list(struct.unpack(f"{order}{len(raw) // 2}{_BINARY[vr]}", raw))
    if vr not in _TEXT_VRS:
        return [raw]  # OB/OW data: bytes, nothing to convert
    try:
        text = raw.decode("ascii").rstrip(" \0")
    except UnicodeDecodeError:
        raise _malformed(keyword, name, f"is not a valid {vr} value") from None
    return _validated([] if not text else text.split("\\"), vr, keyword, name)


def _converted(value: Any) -> list:
    from pydicom.multival import MultiValue

    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]


def _validated(values: list[str], vr: str, keyword: str, name: str) -> list[str]:
    """`values` when pydicom's validator for `vr` accepts each (numbers must not be blank)."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    try:
        for value in values:
            validate_value(vr, value, config.RAISE)  # raises without logging; its message quotes the value
    except ValueError:
        raise _malformed(keyword, name, f"is not a valid {vr} value") from None
    if vr in ("IS", "DS") and any(not value.strip() for value in values):
        raise _malformed(keyword, name, f"is not a valid {vr} value")
    return values


def _float(value: Any, keyword: str, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # a value set in memory that is no number; its message would quote it
        raise _malformed(keyword, name, "is not a number") from None


def _malformed(keyword: str, name: str, problem: str) -> ImageDecodeError:
    return ImageDecodeError(f"{name}: {keyword} {problem}")

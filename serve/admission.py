"""Header checks the Storage SCP runs before it answers a C-STORE: what would make the instance fail
in a worker, deterministically, after the sender was told it is stored.

Each check reads the header only and names the attribute, never its value (comments go to the sender
and to the log). What the results can live with (an orientation they cannot parse is "unknown") is
not refused; what they cannot (a character set pydicom cannot decode, pixel attributes that do not
describe the pixel data, an identifier a result cannot carry) is.
"""

from __future__ import annotations

from typing import Any

SUCCESS, NOT_MATCHING, CANNOT_UNDERSTAND = 0x0000, 0xA900, 0xC000
MAX_CHARACTER_SETS = 8  # values of Specific Character Set (real ones have one to three)
UID_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
# Pixel layouts the runtime decodes (medtk.runtime refuses the others after decoding would start).
BITS_ALLOCATED = (1, 8, 16, 32)

Problem = tuple[int, str]


def character_set_problem(dataset: Any) -> Problem | None:
    """Every value of Specific Character Set must be a defined term pydicom decodes here (an empty first
    value is the default repertoire, as in `\\ISO 2022 IR 87`); results are encoded in it too."""
    from pydicom.charset import python_encoding

    value = dataset.get("SpecificCharacterSet")
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if len(values) > MAX_CHARACTER_SETS:
        return CANNOT_UNDERSTAND, f"more than {MAX_CHARACTER_SETS} Specific Character Sets"
    if any(not isinstance(term, str) or term.strip() not in python_encoding for term in values):
        return CANNOT_UNDERSTAND, "Specific Character Set not supported here"
    return None


def identifier_problem(dataset: Any) -> Problem | None:
    """A UID the results reference must fit a UI value (at most 64 characters of the default repertoire)."""
    for keyword in UID_KEYWORDS:
        uid = str(dataset.get(keyword) or "")
        if not uid or len(uid) > 64 or not all("0" <= c <= "9" or c == "." for c in uid):
            return NOT_MATCHING, f"invalid {keyword}"
    return None


def pixel_problem(dataset: Any) -> Problem | None:
    """pydicom's own check that the pixel attributes (Rows ... Pixel Representation) describe the pixel
    data (its length too, when uncompressed), without decoding; then the layouts the runtime reads."""
    from pydicom.pixels.decoders.base import DecodeRunner

    try:
        runner = DecodeRunner(dataset.file_meta.TransferSyntaxUID)
        runner.set_source(dataset)
        runner.validate()
    except Exception:  # its messages quote the values; only the fact is kept
        return CANNOT_UNDERSTAND, "pixel attributes do not describe the pixel data"
    if int(dataset.BitsAllocated) not in BITS_ALLOCATED:
        return CANNOT_UNDERSTAND, "Bits Allocated not supported"
    return None

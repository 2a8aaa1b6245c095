"""Result objects encoded from a template: highdicom builds each kind once, per image only what changes.

Building a TID 1500 report with highdicom costs tens of milliseconds per image (it deep-copies and
re-parses the content tree and searches it for evidence), and pydicom's writer walks every element
again to encode it. Almost all of that is the same for every image a model sees: the observer
context, the algorithm identification, the coded concepts, the flags. So `sr.py` and `sc.py` let
highdicom build each result once per model (from a prototype source, per label and character set)
and this module keeps that prototype as encoded bytes; per image only the values that change
(UIDs, dates, the patient/study attributes copied from the source, the references, the finding and
probability, the pixels) are encoded, with pydicom's own element writer, and spliced in tag order.

Output is Explicit VR Little Endian. Sequences that hold spliced items are written with undefined
length (item and sequence delimiters, PS3.5 7.5), so a static item never needs its length patched.
Per image, pydicom's writer (~25 us an element) was most of the cost of building the results
(3.4 ms of SR + SC per image), so the elements that change are written directly where that is
trivially right: values of the ASCII-only
VRs the node itself sets (UIDs, dates, codes, numbers), the source's patient/study elements copied
as the bytes the source was sent with (same character set: the results use the source's), and the
file meta. Everything else (sequences, text the node must encode, ambiguous or big-endian sources)
still goes through pydicom.
tests/serve/test_results.py checks that every result equals what highdicom builds for the same
source and prediction, element by element.
"""

from __future__ import annotations

import datetime
import functools
import struct
from typing import Any, Iterable

from medtk.serve import standard

ITEM = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # (FFFE,E000), undefined length
ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # (FFFE,E00D)
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD)
PREAMBLE = b"\x00" * 128 + b"DICM"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
NOT_BUILT = object()  # a cache entry not there yet (None is a built answer: no item)

# Set by highdicom from the source on every result (SOPClass.__init__ and the SC/SR constructors):
# patient and study, type 2 (present, empty when the source has no value).
PATIENT_STUDY_KEYWORDS = {
    "PatientName": 0x00100010,
    "PatientID": 0x00100020,
    "PatientBirthDate": 0x00100030,
    "PatientSex": 0x00100040,
    "AccessionNumber": 0x00080050,
    "StudyID": 0x00200010,
    "StudyDate": 0x00080020,
    "StudyTime": 0x00080030,
    "ReferringPhysicianName": 0x00080090,
}
PATIENT_STUDY = tuple(PATIENT_STUDY_KEYWORDS.values())
# Per image in every result: identity, creation time, character set, the equipment that contributed.
SPECIFIC_CHARACTER_SET = 0x00080005
INSTANCE_CREATION_DATE, INSTANCE_CREATION_TIME = 0x00080012, 0x00080013
SOP_INSTANCE_UID = 0x00080018
CONTENT_DATE, CONTENT_TIME = 0x00080023, 0x00080033
STUDY_INSTANCE_UID, SERIES_INSTANCE_UID = 0x0020000D, 0x0020000E
CONTRIBUTING_EQUIPMENT = 0x0018A001
CONTRIBUTION_DATETIME = 0x0018A002
COMMON_DYNAMIC = frozenset({
    *PATIENT_STUDY, SPECIFIC_CHARACTER_SET, INSTANCE_CREATION_DATE, INSTANCE_CREATION_TIME, SOP_INSTANCE_UID,
    CONTENT_DATE, CONTENT_TIME, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, CONTRIBUTING_EQUIPMENT,
})


def charset_key(source: Any) -> tuple[str, ...]:
    """The source's Specific Character Set as a hashable key (results are encoded with it)."""
    value = source.get("SpecificCharacterSet")
    if value is None or value == "":
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


@functools.lru_cache(maxsize=32)
def _encodings(charset: tuple[str, ...]) -> list[str]:
    from pydicom.charset import convert_encodings, default_encoding

    return convert_encodings(list(charset) or [default_encoding])


def _buffer():
    from pydicom.filebase import DicomBytesIO

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    return fp


# VRs whose value is in the default repertoire whatever the character set (PS3.5 6.1.2): written as
# given, padded to even length (UI with NUL, the rest with a space).
ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
# Text VRs whose raw bytes (in the source's character set) can be copied into a result that uses it.
COPYABLE_TEXT_VRS = ASCII_VRS | {"LO", "LT", "PN", "SH", "ST", "UC", "UT"}
LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
BINARY_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


def header(tag: int, vr: str, length: int) -> bytes:
    """An element's tag, VR and length, Explicit VR Little Endian."""
    if vr in LONG_LENGTH_VRS:
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), length)


# Longest value of each ASCII VR (PS3.5 6.2), in bytes.
MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "TM": 14, "UI": 64}


def _ascii_text(vr: str, value: str | int | float) -> str:
    """One value as text within its VR's length: a DS number is formatted to fit, anything else too long
    is an error (a result must never carry a value a receiver may refuse or truncate)."""
    if vr == "DS" and isinstance(value, float) and not isinstance(value, str):
        from pydicom.valuerep import format_number_as_ds

        text = str(value)
        return text if len(text) <= MAX_LENGTH["DS"] else format_number_as_ds(float(value))
    text = str(value)
    if len(text) > MAX_LENGTH[vr]:
        raise ValueError(f"a {vr} value is at most {MAX_LENGTH[vr]} characters; got {len(text)}")
    return text


def _direct_value(vr: str, value: Any) -> bytes | None:
    """The encoded value, or None where pydicom must encode it."""
    values = [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
    if vr in ASCII_VRS and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        try:
            data = "\\".join(_ascii_text(vr, v) for v in values).encode("ascii")
        except UnicodeEncodeError:
            return None
        return data + (b"\x00" if vr == "UI" else b" ") if len(data) % 2 else data
    if vr in BINARY_FORMATS and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return struct.pack(f"<{len(values)}{BINARY_FORMATS[vr]}", *values)
    return None


def encode_element(element: Any, charset: tuple[str, ...]) -> bytes:
    """One data element, Explicit VR Little Endian, text in `charset`."""
    from pydicom.filewriter import write_data_element

    fp = _buffer()
    write_data_element(fp, element, _encodings(charset))
    return fp.getvalue()


def encode_dataset(dataset: Any, charset: tuple[str, ...]) -> bytes:
    """A data set's elements (an item's body), Explicit VR Little Endian, text in `charset`."""
    from pydicom.filewriter import write_dataset

    fp = _buffer()
    write_dataset(fp, dataset, _encodings(charset))
    return fp.getvalue()


def sequence(tag: int, bodies: Iterable[bytes]) -> bytes:
    """A sequence of already encoded item bodies, with undefined lengths and delimiters."""
    parts = [struct.pack("<HH", tag >> 16, tag & 0xFFFF), b"SQ\x00\x00\xff\xff\xff\xff"]
    for body in bodies:
        parts += (ITEM, body, ITEM_END)
    parts.append(SEQUENCE_END)
    return b"".join(parts)


def element(tag: int, vr: str, value: Any, charset: tuple[str, ...] = ()) -> bytes:
    data = _direct_value(vr, value)
    if data is not None:
        return header(tag, vr, len(data)) + data
    from pydicom.dataelem import DataElement

    return encode_element(DataElement(tag, vr, value), charset)


def pixel_data(data: bytes) -> bytes:
    """(7FE0,0010) OB, native (uncompressed) pixels, padded to an even length."""
    if len(data) % 2:
        data += b"\x00"
    return b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", len(data)) + data


def join(elements: dict[int, bytes]) -> bytes:
    """Encoded elements in ascending tag order (PS3.5 7.1: a data set's elements are ordered)."""
    return b"".join(elements[tag] for tag in sorted(elements))


def referenced_sop(source: Any) -> bytes:
    """The body of a Referenced SOP item (class and instance UID) pointing at `source`."""
    return join({0x00081150: element(0x00081150, "UI", str(source.SOPClassUID)),
                 0x00081155: element(0x00081155, "UI", str(source.SOPInstanceUID))})


def file_bytes(meta: Any, sop_instance_uid: str, body: bytes) -> bytes:
    """Preamble, file meta information (for `sop_instance_uid`, Explicit VR Little Endian) and the data set.

    The meta group as pydicom's `write_file_meta_info(enforce_standard=True)` writes it from `meta`'s
    class and implementation UIDs (tests/serve/test_results.py compares the two).
    """
    elements = [
        header(0x00020001, "OB", 2) + b"\x00\x01",  # File Meta Information Version
        element(0x00020002, "UI", str(meta.MediaStorageSOPClassUID)),
        element(0x00020003, "UI", sop_instance_uid),
        element(0x00020010, "UI", EXPLICIT_VR_LITTLE_ENDIAN),
        element(0x00020012, "UI", str(meta.ImplementationClassUID)),
    ]
    if "ImplementationVersionName" in meta:
        elements.append(element(0x00020013, "SH", str(meta.ImplementationVersionName)))
    group = b"".join(elements)
    return PREAMBLE + header(0x00020000, "UL", 4) + struct.pack("<I", len(group)) + group + body


def static_elements(prototype: Any, dynamic: frozenset[int] | set[int], charset: tuple[str, ...]) -> dict[int, bytes]:
    """Every top-level element of a highdicom-built prototype that is not per image, encoded once."""
    return {int(tag): encode_element(prototype[tag], charset) for tag in prototype.keys()
            if int(tag) not in dynamic and not (tag.element == 0 and tag.group > 6)}


class CommonParts:
    """The per-image top-level elements every result has, for one prototype in one character set.

    Built once per result shape: the prototype's processing-equipment items are kept encoded (only
    their time changes), and the acquisition-equipment item derived from a source is kept per distinct
    set of equipment values (a modality sends the same ones with every image).
    """

    MAX_EQUIPMENT = 64  # distinct acquisition-equipment items kept

    def __init__(self, prototype: Any, charset: tuple[str, ...]) -> None:
        self.charset = charset
        self.content_date, self.content_time = CONTENT_DATE in prototype, CONTENT_TIME in prototype
        self.processing = [static_elements(item, {CONTRIBUTION_DATETIME}, charset)
                           for item in prototype.get("ContributingEquipmentSequence", [])
                           if CONTRIBUTION_DATETIME in item]  # the prototype's own acquisition item has none
        self._acquisition: dict[tuple, bytes | None] = {}

    def render(self, source: Any, *, sop_instance_uid: str, series_instance_uid: str, now: datetime.datetime,
               copy_tags: Iterable[int] = ()) -> dict[int, bytes]:
        """This image's elements, as highdicom would set them from `source`."""
        from pydicom.datadict import dictionary_VR

        charset = self.charset
        date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
        out = {
            INSTANCE_CREATION_DATE: element(INSTANCE_CREATION_DATE, "DA", date),
            INSTANCE_CREATION_TIME: element(INSTANCE_CREATION_TIME, "TM", time),
            SOP_INSTANCE_UID: element(SOP_INSTANCE_UID, "UI", sop_instance_uid),
            STUDY_INSTANCE_UID: element(STUDY_INSTANCE_UID, "UI", str(source.StudyInstanceUID)),
            SERIES_INSTANCE_UID: element(SERIES_INSTANCE_UID, "UI", series_instance_uid),
        }
        if self.content_date:
            out[CONTENT_DATE] = element(CONTENT_DATE, "DA", date)
        if self.content_time:
            out[CONTENT_TIME] = element(CONTENT_TIME, "TM", time)
        if charset:
            out[SPECIFIC_CHARACTER_SET] = element(SPECIFIC_CHARACTER_SET, "CS", list(charset))
        for tag in (*PATIENT_STUDY, *copy_tags):
            if tag in source:
                out[tag] = source_element(source, tag, charset)
            elif tag in PATIENT_STUDY:  # type 2: present and empty
                out[tag] = header(tag, dictionary_VR(tag), 0)
        items = [] if (acquisition := self._acquisition_item(source)) is None else [acquisition]
        stamp = element(CONTRIBUTION_DATETIME, "DT", now.strftime("%Y%m%d%H%M%S.%f"))
        items += [join({**item, CONTRIBUTION_DATETIME: stamp}) for item in self.processing]
        out[CONTRIBUTING_EQUIPMENT] = sequence(CONTRIBUTING_EQUIPMENT, items)
        return out

    def _acquisition_item(self, source: Any) -> bytes | None:
        """Workers share this cache: each uses what it looked up or built, never a second lookup."""
        key = tuple(_raw_value(source, keyword) for keyword in ACQUISITION_KEYWORDS)
        encoded = self._acquisition.get(key, NOT_BUILT)
        if encoded is not NOT_BUILT:
            return encoded
        item = _acquisition_equipment(source)
        encoded = None if item is None else encode_dataset(item, self.charset)
        if len(self._acquisition) >= self.MAX_EQUIPMENT:
            self._acquisition.clear()
        self._acquisition[key] = encoded
        return encoded


# What `_acquisition_equipment` reads from a source.
ACQUISITION_KEYWORDS = ("SOPClassUID", "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
                        "DeviceSerialNumber", "InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress",
                        "StationName", "AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime")


def _raw_value(source: Any, keyword: str) -> str | None:
    """A hashable stand-in for an element's value: its raw bytes, or the repr of a value already read."""
    from pydicom.datadict import tag_for_keyword

    item = source.get_item(tag_for_keyword(keyword))
    return None if item is None else repr(item.value)


def source_element(source: Any, tag: int, charset: tuple[str, ...]) -> bytes:
    """One element of `source`, for a result encoded in `charset` (the source's own).

    Text (and numbers) the source holds as raw Little Endian bytes of a known VR are copied as they
    are: a result in the source's character set holds the same bytes pydicom would write back.
    """
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import dictionary_VR

    raw = source.get_item(tag)
    if isinstance(raw, RawDataElement) and raw.is_little_endian and raw.value is not None:
        try:
            vr = raw.VR or dictionary_VR(tag)  # implicit VR: the dictionary's
        except KeyError:
            vr = ""
        if vr in COPYABLE_TEXT_VRS or vr in BINARY_FORMATS:
            data = bytes(raw.value)
            if len(data) % 2:  # not allowed, but sent: pad as a writer would
                data += b"\x00" if vr == "UI" else b" "
            if vr in LONG_LENGTH_VRS or len(data) <= 0xFFFF:
                return header(tag, vr, len(data)) + data
    from pydicom.filewriter import correct_ambiguous_vr_element

    return encode_element(correct_ambiguous_vr_element(source[tag], source, True), charset)


def _acquisition_equipment(source: Any) -> Any:
    """`highdicom.ContributingEquipment.for_image_acquisition(source)`, or None where it raises; the same
    fields, with its slow per-call IOD lookup (does this SOP class hold pixels?) cached per SOP class."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    manufacturer = source.get("Manufacturer")
    if not standard.iod_has_pixel_data(str(source.get("SOPClassUID", ""))) or manufacturer is None or manufacturer == "":
        return None
    when = source.get("AcquisitionDateTime")
    if when is None:
        date, time = source.get("AcquisitionDate"), source.get("AcquisitionTime")
        if isinstance(date, datetime.date) and isinstance(time, datetime.time):
            when = datetime.datetime.combine(date, time)
    try:
        return hd.ContributingEquipment(
            manufacturer=manufacturer, purpose_of_reference=codes.DCM.AcquisitionEquipment,
            manufacturer_model_name=source.get("ManufacturerModelName"),
            software_versions=source.get("SoftwareVersions"), device_serial_number=source.get("DeviceSerialNumber"),
            institution_name=source.get("InstitutionName"),
            institutional_department_name=source.get("InstitutionalDepartmentName"),
            institution_address=source.get("InstitutionAddress"), station_name=source.get("StationName"),
            contribution_datetime=when, contribution_description="Acquisition equipment of the source image(s)",
        )
    except Exception:  # a value highdicom refuses: it leaves the item out too
        return None

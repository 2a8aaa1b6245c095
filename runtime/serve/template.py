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
tests/serve/test_results.py checks that every result equals what highdicom builds for the same
source and prediction, element by element.
"""

from __future__ import annotations

import datetime
import functools
import logging
import struct
from typing import Any, Iterable

log = logging.getLogger(__name__)

ITEM = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # (FFFE,E000), undefined length
ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # (FFFE,E00D)
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD)
PREAMBLE = b"\x00" * 128 + b"DICM"

# Set by highdicom from the source on every result (SOPClass.__init__ and the SC/SR constructors):
# patient and study, type 2 (present, empty when the source has no value).
PATIENT_STUDY = (
    0x00100010,  # PatientName
    0x00100020,  # PatientID
    0x00100030,  # PatientBirthDate
    0x00100040,  # PatientSex
    0x00080050,  # AccessionNumber
    0x00200010,  # StudyID
    0x00080020,  # StudyDate
    0x00080030,  # StudyTime
    0x00080090,  # ReferringPhysicianName
)
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


def file_bytes(meta: Any, sop_instance_uid: str, body: bytes) -> bytes:
    """Preamble, file meta information (for `sop_instance_uid`, Explicit VR Little Endian) and the data set."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = meta.MediaStorageSOPClassUID
    file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    file_meta.ImplementationClassUID = meta.ImplementationClassUID
    if "ImplementationVersionName" in meta:
        file_meta.ImplementationVersionName = meta.ImplementationVersionName
    fp = _buffer()
    write_file_meta_info(fp, file_meta, enforce_standard=True)
    return PREAMBLE + fp.getvalue() + body


def static_elements(prototype: Any, dynamic: frozenset[int] | set[int], charset: tuple[str, ...]) -> dict[int, bytes]:
    """Every top-level element of a highdicom-built prototype that is not per image, encoded once."""
    return {int(tag): encode_element(prototype[tag], charset) for tag in prototype.keys()
            if int(tag) not in dynamic and not (tag.element == 0 and tag.group > 6)}


def common_elements(source: Any, prototype: Any, *, sop_instance_uid: str, series_instance_uid: str,
                    charset: tuple[str, ...], now: datetime.datetime, copy_tags: Iterable[int] = ()) -> dict[int, bytes]:
    """The per-image top-level elements every result has, as highdicom would set them from `source`."""
    from pydicom.dataelem import DataElement
    from pydicom.datadict import dictionary_VR

    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    out = {
        INSTANCE_CREATION_DATE: element(INSTANCE_CREATION_DATE, "DA", date),
        INSTANCE_CREATION_TIME: element(INSTANCE_CREATION_TIME, "TM", time),
        SOP_INSTANCE_UID: element(SOP_INSTANCE_UID, "UI", sop_instance_uid),
        STUDY_INSTANCE_UID: element(STUDY_INSTANCE_UID, "UI", str(source.StudyInstanceUID)),
        SERIES_INSTANCE_UID: element(SERIES_INSTANCE_UID, "UI", series_instance_uid),
    }
    if CONTENT_DATE in prototype:
        out[CONTENT_DATE] = element(CONTENT_DATE, "DA", date)
    if CONTENT_TIME in prototype:
        out[CONTENT_TIME] = element(CONTENT_TIME, "TM", time)
    if charset:
        out[SPECIFIC_CHARACTER_SET] = element(SPECIFIC_CHARACTER_SET, "CS", list(charset) if len(charset) > 1
                                              else charset[0])
    for tag in (*PATIENT_STUDY, *copy_tags):
        if tag in source:
            out[tag] = _source_element(source, tag, charset)
        elif tag in PATIENT_STUDY:  # type 2: present and empty
            out[tag] = encode_element(DataElement(tag, dictionary_VR(tag), None), charset)
    out[CONTRIBUTING_EQUIPMENT] = sequence(CONTRIBUTING_EQUIPMENT,
                                           [encode_dataset(item, charset) for item in _equipment(source, prototype, now)])
    return out


def _source_element(source: Any, tag: int, charset: tuple[str, ...]) -> bytes:
    from pydicom.filewriter import correct_ambiguous_vr_element

    elem = correct_ambiguous_vr_element(source[tag], source, True)
    return encode_element(elem, charset)


def _equipment(source: Any, prototype: Any, now: datetime.datetime) -> list[Any]:
    """Acquisition equipment of the source (when it names a manufacturer), then the prototype's own
    processing equipment with this image's time, as highdicom's `_add_contributing_equipment` does."""
    import highdicom as hd
    from pydicom.dataelem import DataElement

    items = []
    acquisition = _acquisition_equipment(source)
    if acquisition is not None:
        items.append(acquisition)
    for item in prototype.get("ContributingEquipmentSequence", []):
        if CONTRIBUTION_DATETIME not in item:  # the prototype's own acquisition item (it has none here)
            continue
        processing = item.copy()  # shallow: the shared elements are only read
        processing[CONTRIBUTION_DATETIME] = DataElement(CONTRIBUTION_DATETIME, "DT",
                                                        now.strftime("%Y%m%d%H%M%S.%f"))
        items.append(processing)
    return items


def _acquisition_equipment(source: Any) -> Any:
    """`highdicom.ContributingEquipment.for_image_acquisition(source)`, or None where it raises; the same
    fields, with its slow per-call IOD lookup (does this SOP class hold pixels?) cached per SOP class."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    manufacturer = source.get("Manufacturer")
    if not _has_pixel_data(str(source.get("SOPClassUID", ""))) or manufacturer is None or manufacturer == "":
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


@functools.lru_cache(maxsize=64)
def _has_pixel_data(sop_class_uid: str) -> bool:
    try:
        from highdicom._standard_utils import does_iod_have_pixel_data

        return bool(does_iod_have_pixel_data(sop_class_uid))
    except Exception:  # an unknown SOP class: highdicom raises, and leaves the item out
        return False


@functools.lru_cache(maxsize=64)
def patient_study_module_tags(sop_class_uid: str) -> tuple[int, ...]:
    """Root attributes of the Patient and Study modules of the source's IOD: what highdicom's
    `copy_patient_and_study_information` copies into an SR (from its bundled copy of the standard)."""
    try:
        from highdicom._standard_utils import get_iod_module_map, get_module_attribute_map, get_sop_class_iod_map
        from pydicom.datadict import tag_for_keyword

        iod = get_sop_class_iod_map()[sop_class_uid]
        attributes = get_module_attribute_map()
        tags = []
        for module in get_iod_module_map()[iod]:
            if module["ie"] not in ("Patient", "Study"):
                continue
            for item in attributes[module["key"]]:
                if len(item["path"]) == 0:
                    tag = tag_for_keyword(str(item["keyword"]))
                    if tag is not None:
                        tags.append(int(tag))
        return tuple(dict.fromkeys(tags))
    except (ImportError, KeyError):  # an unknown SOP class (highdicom would refuse it) or a changed highdicom
        log.debug("no module table for SOP class %s; copying the type 2 patient/study attributes only", sop_class_uid)
        return ()

"""The Secondary Capture of one prediction: the image with the CAM overlay and the burned-in text (caption.py).

The anatomy the source states (Body Part Examined, Laterality, Image Laterality) is copied: the SC
shows the same body part. General Series' Laterality is type 2C, required for a paired body part
without Image Laterality; when the source names neither a body part nor a side, the SC cannot know
either and writes Laterality empty ("unknown"), as type 2 allows; otherwise the source's own choice
(present or absent) is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtk.serve.identity import ModelIdentity
from medtk.serve.sr import MANUFACTURER, NOTICE
from medtk.serve.template import CommonParts
from medtk.serve.uids import SC_SERIES_NUMBER, result_uid, series_uid


def build_sc(source: Any, pixels_rgb: np.ndarray, model: ModelIdentity, software_version: str) -> Any:
    """A Secondary Capture in the source's study, a series of its own, UIDs derived from the source."""
    import highdicom as hd

    orientation = patient_orientation(source)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=pixels_rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series_uid(source.StudyInstanceUID, model.file_sha256, "sc"),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=result_uid(source.SOPInstanceUID, model.file_sha256, "sc"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=orientation or ("L", "F"),
    )
    if orientation is None:  # unknown: Patient Orientation is type 2, so empty rather than made up
        sc.PatientOrientation = None
    sc.SeriesDescription = f"{NOTICE} - AI CAM overlay, {model.name}"[:64]
    sc.BurnedInAnnotation = "YES"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = f"class activation map overlay by {model.name} {model.version}"[:1024]
    sc.SoftwareVersions = software_version
    for keyword in ANATOMY_KEYWORDS:
        if keyword in source:
            setattr(sc, keyword, source[keyword].value)
    if laterality_unknown(source):
        sc.Laterality = None
    reference = _reference(source)
    sc.SourceImageSequence = [reference]
    return sc


ANATOMY_KEYWORDS = {"BodyPartExamined": 0x00180015, "Laterality": 0x00200060, "ImageLaterality": 0x00200062}
LATERALITY = ANATOMY_KEYWORDS["Laterality"]


def laterality_unknown(source: Any) -> bool:
    """Laterality must be written empty: the source has none and names no body part or image side."""
    if "Laterality" in source:
        return False
    return not any(str(source.get(keyword) or "").strip() for keyword in ("BodyPartExamined", "ImageLaterality"))


def _reference(source: Any) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


_AXES = (("L", "R"), ("P", "A"), ("H", "F"))  # +x, -x / +y, -y / +z, -z in the patient coordinate system


def patient_orientation(source: Any) -> tuple[str, str] | None:
    """The source's row and column directions as letters (e.g. ("L", "P")), or None when not known (or
    not readable: a malformed orientation makes the SC's unknown, it does not fail the image)."""
    given = source.get("PatientOrientation")
    if _several(given) and len(given) == 2 and all(given):
        return str(given[0]), str(given[1])
    cosines = source.get("ImageOrientationPatient")
    try:
        values = [float(v) for v in cosines] if _several(cosines) else []
    except (TypeError, ValueError):
        return None
    if len(values) != 6:
        return None
    return _direction(values[:3]), _direction(values[3:])


def _several(value: Any) -> bool:
    """A multi-valued element's value (a single value, or text where numbers belong, is not)."""
    from collections.abc import Sequence

    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _direction(vector: list[float]) -> str:
    """Letters of the axes a direction cosine vector leans on, strongest first (at most two)."""
    order = sorted(range(3), key=lambda axis: -abs(vector[axis]))
    letters = [_AXES[axis][0 if vector[axis] > 0 else 1] for axis in order if abs(vector[axis]) > 0.25]
    return "".join(letters[:2]) or "L"


# -- the template the node uses ---------------------------------------------------------------------
ROWS, COLUMNS, PIXEL_DATA = 0x00280010, 0x00280011, 0x7FE00010
PATIENT_ORIENTATION = 0x00200020
SOURCE_IMAGE_SEQUENCE = 0x00082112
CAPTURE_DATE, CAPTURE_TIME = 0x00181012, 0x00181014


class CaptureTemplate:
    """The Secondary Capture of one model, built by highdicom once from a prototype (without a character
    set, as the SR's: see `ReportTemplate`) and kept encoded per character set; `render` fills one
    image's values and pixels. Same content as `build_sc`."""

    MAX_SHAPES = 32  # character sets kept encoded

    def __init__(self, model: ModelIdentity, software_version: str) -> None:
        self.model, self.software_version = model, software_version
        self._prototype: Any = None
        self._shapes: dict[tuple[str, ...], tuple[dict[int, bytes], CommonParts]] = {}

    def prepare(self) -> None:
        """Build the shape for the default character set now, not for the first image."""
        self._shape(())

    def _shape(self, charset: tuple[str, ...]) -> tuple[dict[int, bytes], CommonParts]:
        from medtk.serve import template as t

        shape = self._shapes.get(charset)
        if shape is None:
            if self._prototype is None:
                self._prototype = self._build_prototype()
            dynamic = t.COMMON_DYNAMIC | {ROWS, COLUMNS, PIXEL_DATA, PATIENT_ORIENTATION, SOURCE_IMAGE_SEQUENCE,
                                          CAPTURE_DATE, CAPTURE_TIME, *ANATOMY_KEYWORDS.values()}
            if len(self._shapes) >= self.MAX_SHAPES:
                self._shapes.clear()
            shape = self._shapes[charset] = (t.static_elements(self._prototype, dynamic, charset),
                                             t.CommonParts(self._prototype, charset))
        return shape

    def render(self, source: Any, pixels_rgb: np.ndarray) -> tuple[str, bytes]:
        """(SOP Instance UID, the Part 10 file) of the SC holding `pixels_rgb` (H x W x 3 uint8)."""
        import datetime

        from medtk.serve import template as t

        if pixels_rgb.ndim != 3 or pixels_rgb.shape[2] != 3 or pixels_rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8 pixels, got {pixels_rgb.shape} {pixels_rgb.dtype}")
        charset = t.charset_key(source)
        static, common = self._shape(charset)
        model = self.model
        uid = result_uid(source.SOPInstanceUID, model.file_sha256, "sc")
        now = datetime.datetime.now()
        elements = dict(static)
        elements.update(common.render(
            source, sop_instance_uid=uid, now=now,
            series_instance_uid=series_uid(source.StudyInstanceUID, model.file_sha256, "sc"),
        ))
        elements.update({tag: t.source_element(source, tag, charset) for tag in ANATOMY_KEYWORDS.values()
                         if tag in source})
        if laterality_unknown(source):
            elements[LATERALITY] = t.header(LATERALITY, "CS", 0)
        orientation = patient_orientation(source)
        height, width = pixels_rgb.shape[:2]
        elements.update({
            CAPTURE_DATE: t.element(CAPTURE_DATE, "DA", now.strftime("%Y%m%d")),
            CAPTURE_TIME: t.element(CAPTURE_TIME, "TM", now.strftime("%H%M%S.%f")),
            PATIENT_ORIENTATION: t.element(PATIENT_ORIENTATION, "CS", list(orientation) if orientation else None),
            ROWS: t.element(ROWS, "US", height),
            COLUMNS: t.element(COLUMNS, "US", width),
            SOURCE_IMAGE_SEQUENCE: t.sequence(SOURCE_IMAGE_SEQUENCE, [t.referenced_sop(source)]),
            PIXEL_DATA: t.pixel_data(np.ascontiguousarray(pixels_rgb).tobytes()),  # PlanarConfiguration 0
        })
        return uid, t.file_bytes(self._prototype.file_meta, uid, t.join(elements))

    def _build_prototype(self) -> Any:
        from pydicom.dataset import Dataset

        source = Dataset()
        source.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        source.SOPInstanceUID, source.StudyInstanceUID, source.SeriesInstanceUID = "1.2.3.4.5", "1.2.3", "1.2.3.4"
        source.PatientOrientation = ["L", "F"]
        return build_sc(source, np.zeros((2, 2, 3), np.uint8), self.model, self.software_version)

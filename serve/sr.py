"""The DICOM Structured Report of one prediction: TID 1500 with one measurement group (highdicom).

    Imaging Measurement Report (TID 1500), UNVERIFIED, partial
      observer: device "medtk serve" (UID derived from the model), model name
      Imaging Measurements
        Measurement Group (TID 1501)
          Tracking Identifier / UID
          Algorithm Identification: name, version, parameters (weights sha256, operating point, ...)
          Source: the received image (SOP Class / Instance UID)
          Finding (DCM 121071) = <label> (99MEDTK)                 } none of these three when the
          Probability of <class> (99MEDTK) = p {1}                  } finding is withheld
          Decision threshold (99MEDTK) = t {1}  (models with an operating point)
          Comment (DCM 121106) = "No finding issued: <why>"    (withheld: assessment.py)
          Comment (DCM 121106) = <warning>                     one TEXT item per warning

Comment (DCM 121106, CID 12101) is the standard's concept for free text about an observation: viewers
show TEXT content items as they are, and the group's findings are read together with them. The series
description and the document title say "not for diagnostic use".
"""

from __future__ import annotations

from typing import Any

from medtk.serve import standard
from medtk.serve.assessment import Assessment
from medtk.serve.identity import ModelIdentity
from medtk.serve.uids import SR_SERIES_NUMBER, device_uid, result_uid, series_uid

SCHEME = "99MEDTK"  # private coding scheme for the model's own labels and quantities
NOTICE = "NOT FOR DIAGNOSTIC USE"
MANUFACTURER = "medtk"


def probability_code(class_name: str):
    from highdicom.sr import CodedConcept

    return CodedConcept("probability", SCHEME, f"Probability of {class_name}")


def threshold_code():
    from highdicom.sr import CodedConcept

    return CodedConcept("threshold", SCHEME, "Decision threshold")


def label_code(label: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(label_code_value(label), SCHEME, label)


def label_code_value(label: str) -> str:
    """A code value (SH, at most 16 characters) naming one label: the label itself when it fits in plain
    ASCII, else its first 7 characters and 8 hex digits of its sha256, so two labels that share a
    prefix never share a code."""
    import hashlib

    if len(label) <= 16 and label.isascii() and "\\" not in label:
        return label
    prefix = "".join(c for c in label if c.isascii() and c.isprintable() and c != "\\")[:7]
    return f"{prefix}~{hashlib.sha256(label.encode('utf-8')).hexdigest()[:8]}"


def build_sr(source: Any, assessment: Assessment, model: ModelIdentity, software_version: str) -> Any:
    """A Comprehensive 3D SR about `source` (a pydicom header of the received image), built by highdicom.

    The reference `ReportTemplate` reproduces; the node itself uses the template (built once per model).
    """
    return _report(source, assessment.label, assessment.probability, assessment.threshold, model, software_version,
                   assessment.notes)


def note_item(text: str) -> Any:
    """One warning (or the reason a finding is withheld) as a TEXT content item a viewer shows."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.sr.TextContentItem(name=codes.DCM.Comment, value=text,
                                 relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


def _report(source: Any, label: str | None, probability: float | None, threshold: float | None,
            model: ModelIdentity, software_version: str, notes: tuple[str, ...] = ()) -> Any:
    """`label` None: the finding is withheld, so no finding, probability or threshold is recorded."""
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    measurements, evaluations = [], []
    if label is not None:
        measurements.append(hd.sr.Measurement(name=probability_code(model.scored_class(label)),
                                              value=float(probability), unit=codes.UCUM.NoUnits))
        evaluations.append(hd.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=label_code(label)))
        if threshold is not None:
            measurements.append(hd.sr.Measurement(name=threshold_code(), value=float(threshold),
                                                  unit=codes.UCUM.NoUnits))
    parameters = [f"weights_sha256={model.weights_sha256}", f"variant={model.variant}",
                  f"decision={'threshold ' + model.rule if model.rule else 'argmax'}", f"medtk={software_version}"]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=result_uid(source.SOPInstanceUID, model.file_sha256, "tracking"), identifier=f"medtk {model.name}"
        ),
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=model.name, version=model.version, parameters=parameters, manufacturer=MANUFACTURER
        ),
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
        qualitative_evaluations=evaluations or None,
        measurements=measurements or None,
    )
    group[0].ContentSequence.extend(note_item(text) for text in notes)
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(model.file_sha256), name="medtk serve", manufacturer_name=MANUFACTURER,
            model_name=model.name[:64],
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=report,
        series_instance_uid=series_uid(source.StudyInstanceUID, model.file_sha256, "sr"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=result_uid(source.SOPInstanceUID, model.file_sha256, "sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=False,
        is_verified=False,
    )
    sr.SeriesDescription = f"{NOTICE} - UNVERIFIED AI result, {model.name}"[:64]
    sr.SoftwareVersions = software_version
    return sr


# -- the template the node uses ---------------------------------------------------------------------
CONTENT_SEQUENCE = 0x0040A730
EVIDENCE = 0x0040A375  # Current Requested Procedure Evidence Sequence
UID_VALUE = 0x0040A124
MEASURED_VALUE = 0x0040A300
REFERENCED_SOP = 0x00081199
FLOAT_VALUE, NUMERIC_VALUE = 0x0040A161, 0x0040A30A
IMAGING_MEASUREMENTS, MEASUREMENT_GROUP, TRACKING_UID = "126010", "125007", "112040"


class ReportTemplate:
    """The SR of one model, built by highdicom once per (label or withheld, threshold) from a prototype
    source and kept encoded per character set; `render` fills one image's values. Same content as `build_sr`.

    Prototypes are built without a character set: highdicom refuses some valid ones (an empty first
    value, `ISO 2022 IR 149`), and only the encoding depends on it, which `template` does with pydicom.
    """

    MAX_SHAPES = 64  # encoded shapes kept (labels x character sets a sender may use)

    def __init__(self, model: ModelIdentity, software_version: str) -> None:
        if len({label_code_value(label) for label in model.labels}) != len(model.labels):
            raise ValueError(f"labels {list(model.labels)} do not have distinct SR code values")
        self.model, self.software_version = model, software_version
        self._shapes: dict[tuple, _ReportShape] = {}
        self._prototypes: dict[tuple, Any] = {}

    def prepare(self) -> None:
        """Build the shapes for every label (and a withheld finding) in the default character set now."""
        for label in (*self.model.labels, None):
            self._shape(label, self.model.threshold if self.model.positive_class and label else None, ())

    def _shape(self, label: str | None, threshold: float | None, charset: tuple[str, ...]) -> "_ReportShape":
        key = (label, threshold, charset)
        shape = self._shapes.get(key)
        if shape is None:  # a race builds it twice, harmlessly
            if len(self._shapes) >= self.MAX_SHAPES:
                self._shapes.clear()
            shape = self._shapes[key] = _ReportShape(self._prototype(label, threshold), charset)
        return shape

    def render(self, source: Any, assessment: Assessment) -> tuple[str, bytes]:
        """(SOP Instance UID, the Part 10 file) of the SR about `source`."""
        import datetime

        from medtk.serve import template as t

        model = self.model
        charset = t.charset_key(source)
        shape = self._shape(assessment.label, assessment.threshold, charset)
        source_uid = str(source.SOPInstanceUID)
        uid = result_uid(source_uid, model.file_sha256, "sr")
        elements = dict(shape.static)
        elements.update(shape.common.render(
            source, sop_instance_uid=uid, series_instance_uid=series_uid(source.StudyInstanceUID, model.file_sha256, "sr"),
            now=datetime.datetime.now(), copy_tags=standard.patient_study_module_tags(str(source.SOPClassUID)),
        ))
        elements[EVIDENCE] = t.sequence(EVIDENCE, [_evidence(source, charset)])
        elements[CONTENT_SEQUENCE] = shape.content(source, assessment.probability,
                                                   result_uid(source_uid, model.file_sha256, "tracking"),
                                                   assessment.notes)
        return uid, t.file_bytes(shape.prototype.file_meta, uid, t.join(elements))

    def _prototype(self, label: str | None, threshold: float | None) -> Any:
        key = (label, threshold)
        prototype = self._prototypes.get(key)
        if prototype is None:  # at most one per label and one withheld
            prototype = self._prototypes[key] = self._build_prototype(label, threshold)
        return prototype

    def _build_prototype(self, label: str | None, threshold: float | None) -> Any:
        from pydicom.dataset import Dataset

        from medtk.serve import template as t

        source = Dataset()
        source.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR; per image the source's own class is referenced
        source.SOPInstanceUID, source.StudyInstanceUID, source.SeriesInstanceUID = "1.2.3.4.5", "1.2.3", "1.2.3.4"
        source.Modality, source.Rows, source.Columns, source.SamplesPerPixel = "CR", 1, 1, 1
        for keyword in t.PATIENT_STUDY_KEYWORDS:
            setattr(source, keyword, None)
        return _report(source, label, 0.5, threshold, self.model, self.software_version)


class _ReportShape:
    """One prototype SR split into encoded static parts and the slots an image fills."""

    def __init__(self, prototype: Any, charset: tuple[str, ...]) -> None:
        from medtk.serve import template as t

        dynamic = t.COMMON_DYNAMIC | {EVIDENCE, CONTENT_SEQUENCE}
        self.prototype, self.charset = prototype, charset
        self.static = t.static_elements(prototype, dynamic, charset)
        self.common = t.CommonParts(prototype, charset)
        self.root: list[bytes | None] = []  # None: the Imaging Measurements container
        for item in prototype.ContentSequence:
            if _concept(item) == IMAGING_MEASUREMENTS:
                self.measurements = self._container(item)
                self.root.append(None)
                (group,) = item.ContentSequence
                self.group = self._container(group)
                self.items: list[tuple[str, Any]] = []
                for child in group.ContentSequence:
                    self.items.append(self._classify(child))
            else:
                self.root.append(t.encode_dataset(item, charset))

    def _container(self, item: Any) -> dict[int, bytes]:
        from medtk.serve import template as t

        return t.static_elements(item, {CONTENT_SEQUENCE}, self.charset)

    def _classify(self, item: Any) -> tuple[str, Any]:
        """("static", bytes) or (kind, the item's other elements) for a value filled per image."""
        from medtk.serve import template as t

        if item.ValueType == "UIDREF" and _concept(item) == TRACKING_UID:
            return "tracking", t.static_elements(item, {UID_VALUE}, self.charset)
        if item.ValueType == "NUM" and _concept(item) == "probability":
            (value,) = item.MeasuredValueSequence
            return "probability", (t.static_elements(item, {MEASURED_VALUE}, self.charset),
                                   t.static_elements(value, {FLOAT_VALUE, NUMERIC_VALUE}, self.charset))
        if item.ValueType == "IMAGE":
            return "image", t.static_elements(item, {REFERENCED_SOP}, self.charset)
        return "static", t.encode_dataset(item, self.charset)

    def content(self, source: Any, probability: float | None, tracking_uid: str, notes: tuple[str, ...]) -> bytes:
        from pydicom.valuerep import DS

        from medtk.serve import template as t

        bodies = []
        for kind, part in self.items:
            if kind == "static":
                bodies.append(part)
            elif kind == "tracking":
                bodies.append(t.join({**part, UID_VALUE: t.element(UID_VALUE, "UI", tracking_uid)}))
            elif kind == "probability":
                outer, inner = part
                value = t.join({**inner, FLOAT_VALUE: t.element(FLOAT_VALUE, "FD", probability),
                                NUMERIC_VALUE: t.element(NUMERIC_VALUE, "DS", DS(probability, auto_format=True))})
                bodies.append(t.join({**outer, MEASURED_VALUE: t.sequence(MEASURED_VALUE, [value])}))
            else:  # the source image
                bodies.append(t.join({**part, REFERENCED_SOP: t.sequence(REFERENCED_SOP, [t.referenced_sop(source)])}))
        bodies += [t.encode_dataset(note_item(text), self.charset) for text in notes]
        group = t.join({**self.group, CONTENT_SEQUENCE: t.sequence(CONTENT_SEQUENCE, bodies)})
        measurements = t.join({**self.measurements, CONTENT_SEQUENCE: t.sequence(CONTENT_SEQUENCE, [group])})
        return t.sequence(CONTENT_SEQUENCE, [measurements if body is None else body for body in self.root])


def _concept(item: Any) -> str | None:
    names = item.get("ConceptNameCodeSequence")
    return str(names[0].CodeValue) if names else None


def _evidence(source: Any, charset: tuple[str, ...]) -> bytes:
    """The Current Requested Procedure Evidence item: study > series > the source instance."""
    from medtk.serve import template as t

    series = t.join({0x00081199: t.sequence(0x00081199, [t.referenced_sop(source)]),
                     0x0020000E: t.element(0x0020000E, "UI", str(source.SeriesInstanceUID))})
    return t.join({0x00081115: t.sequence(0x00081115, [series]),
                   0x0020000D: t.element(0x0020000D, "UI", str(source.StudyInstanceUID))})

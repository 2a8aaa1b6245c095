"""The node's SR and SC (encoded from a template built once per model) equal what highdicom builds per image."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from tests.serve.serve_helpers import iter_sr_items, radiograph

from medtk.runtime import Classifier
from medtk.serve.assessment import Assessment, withheld
from medtk.serve.identity import ModelIdentity
from medtk.serve.sc import CaptureTemplate, build_sc
from medtk.serve.sr import ReportTemplate, build_sr

SOFTWARE = "medtk 9.9"
# Set from the clock when a result is made: equal only if both were made in the same microsecond.
NOW = {0x00080012, 0x00080013, 0x00080023, 0x00080033, 0x0018A002, 0x00181012, 0x00181014}


def _identity(path) -> ModelIdentity:
    return ModelIdentity.of(Classifier(path, num_threads=1))


def _assessment(model: ModelIdentity, label: str, p_scored: float, warnings: tuple[str, ...] = ()) -> Assessment:
    return Assessment(label=label, scored_class=model.scored_class(label), probability=p_scored,
                      threshold=model.threshold, warnings=warnings)


# What the results must carry: a finding alone, a finding with the runtime's warnings, none (withheld).
def _assessments(model: ModelIdentity) -> dict[str, Assessment]:
    return {
        "plain": _assessment(model, model.labels[0], 0.1234567),
        "warned": _assessment(model, model.labels[-1], 0.87654321,
                              ("input is 16-bit; the model was trained on 8-bit images", "input is RGB; the model "
                               "was trained on MONOCHROME2 images")),
        "withheld": withheld("input modality is CT; the model was trained on CR/DX images only",
                             ("input modality is CT; the model was trained on CR/DX",)),
    }


def _sources(chest_images) -> dict[str, pydicom.Dataset]:
    oblique = pydicom.dcmread(get_testdata_file("MR_small.dcm"), stop_before_pixels=True)
    oblique.SOPInstanceUID = pydicom.uid.generate_uid()
    oblique.ImageOrientationPatient = [0.9, 0.43, 0, 0, 0, -1]  # "LP"/"F": highdicom's SC refuses two letters
    latin = _read(radiograph(chest_images[0]))
    latin.SpecificCharacterSet, latin.PatientName = "ISO_IR 100", "Müller^Jürgen"
    unicode = _read(radiograph(chest_images[1], modality="DX"))
    unicode.SpecificCharacterSet, unicode.PatientName = "ISO_IR 192", "山田^太郎"
    sparse = _read(radiograph(chest_images[2]))
    del sparse.PatientBirthDate, sparse.Manufacturer, sparse.PatientOrientation  # type 2 left empty, no equipment
    sparse.PatientAge, sparse.OtherPatientIDsSequence = "042Y", [pydicom.Dataset()]  # copied by the SR only
    sparse.OtherPatientIDsSequence[0].PatientID = "other-1"
    odd = _read(radiograph(chest_images[3]))  # values of odd length, as some senders write them
    odd.PatientID = "ID123"
    data = _bytes(odd)
    assert b"LO\x06\x00ID123 " in data
    odd = pydicom.dcmread(io.BytesIO(data.replace(b"LO\x06\x00ID123 ", b"LO\x05\x00ID123")), stop_before_pixels=True)
    sided = _read(radiograph(chest_images[4], modality="DX", body_part="BREAST"))
    sided.ImageLaterality = "L"  # General Image: satisfies the SC's Laterality condition
    lateral = _read(radiograph(chest_images[5], body_part="HAND"))
    lateral.Laterality = "R"
    nowhere = _read(radiograph(chest_images[6]))
    del nowhere.BodyPartExamined  # no body part, no side: the SC's Laterality is empty (unknown)
    return {
        "ct": pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True),
        # copied from the source's raw bytes when Little Endian (implicit VR: the dictionary's VR), else re-encoded
        "mr_implicit_vr": pydicom.dcmread(get_testdata_file("MR_small_implicit.dcm"), stop_before_pixels=True),
        "mr_big_endian": pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm"), stop_before_pixels=True),
        "mr_oblique": oblique, "cr_latin1": latin, "dx_utf8": unicode, "cr_sparse": sparse, "cr_odd_length": odd,
        "dx_breast_left": sided, "cr_hand_right": lateral, "cr_no_anatomy": nowhere,
    }


def _for_highdicom(source: pydicom.Dataset) -> pydicom.Dataset:
    """highdicom's SR needs every type 2 patient attribute present (it raises otherwise); the
    template writes a missing one empty, which is what this gives highdicom."""
    source = pydicom.Dataset(source)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        if keyword not in source:
            setattr(source, keyword, None)
    return source


def _read(ds) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(_bytes(ds)), stop_before_pixels=True)


def _bytes(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _comparable(data: bytes) -> dict:
    """The data set as DICOM JSON, values set from the clock removed."""
    def strip(node: dict) -> dict:
        out = {}
        for tag, value in node.items():
            if int(tag, 16) in NOW:
                continue
            if value.get("vr") == "SQ":
                value = {**value, "Value": [strip(item) for item in value.get("Value", [])]}
            out[tag] = value
        return out

    ds = pydicom.dcmread(io.BytesIO(data))
    comparable = strip(ds.to_json_dict(bulk_data_threshold=1 << 30, bulk_data_element_handler=lambda e: ""))
    if "7FE00010" in comparable:  # 8-bit pixels: OB when written explicitly, OW when read from implicit VR
        comparable["7FE00010"] = {**comparable["7FE00010"], "vr": "OB"}
    return comparable


@pytest.mark.parametrize("which", ["op", "argmax"])
def test_sr_template_equals_highdicom(serve_models, chest_images, which):
    model = _identity(serve_models[which])
    template = ReportTemplate(model, SOFTWARE)
    for name, source in _sources(chest_images).items():
        for kind, assessment in _assessments(model).items():
            uid, data = template.render(source, assessment)
            expected = build_sr(_for_highdicom(source), assessment, model, SOFTWARE)
            assert uid == expected.SOPInstanceUID
            assert _comparable(data) == _comparable(_bytes(expected)), f"{name}, {kind}"
            sr = pydicom.dcmread(io.BytesIO(data))
            report = hd.sr.Comprehensive3DSR.from_dataset(sr).content  # parses as TID 1500
            assert len(report.get_image_measurement_groups()) == 1
            assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "PARTIAL"
            assert "NOT FOR DIAGNOSTIC USE" in sr.SeriesDescription
            findings = [i.ConceptCodeSequence[0].CodeMeaning for i in iter_sr_items(sr) if i.ValueType == "CODE"
                        and i.ConceptNameCodeSequence[0].CodeValue == "121071"]
            comments = [i.TextValue for i in iter_sr_items(sr) if i.ValueType == "TEXT"
                        and i.ConceptNameCodeSequence[0].CodeValue == "121106"]
            assert findings == ([] if assessment.label is None else [assessment.label])
            assert comments == list(assessment.notes)
            assert sr.PatientName == source.PatientName


def test_sc_template_equals_highdicom(serve_models, chest_images):
    model = _identity(serve_models["op"])
    template = CaptureTemplate(model, SOFTWARE)
    rng = np.random.default_rng(0)
    for name, source in _sources(chest_images).items():
        pixels = rng.integers(0, 256, (37, 52, 3), dtype=np.uint8)  # odd sizes: the pixel data is padded
        uid, data = template.render(source, pixels)
        sc = pydicom.dcmread(io.BytesIO(data))
        assert sc.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        np.testing.assert_array_equal(sc.pixel_array, pixels)
        assert sc.BurnedInAnnotation == "YES" and "NOT FOR DIAGNOSTIC USE" in sc.SeriesDescription
        assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert sc.PatientName == source.PatientName and sc.StudyInstanceUID == source.StudyInstanceUID
        assert sc.get("BodyPartExamined") == source.get("BodyPartExamined")
        assert sc.get("ImageLaterality") == source.get("ImageLaterality")
        assert ("Laterality" in sc) == ("Laterality" in source or name in ("cr_no_anatomy", "ct", "mr_oblique"))
        if name == "mr_oblique":
            assert list(sc.PatientOrientation) == ["LP", "F"]
            continue
        expected = build_sc(_for_highdicom(source), pixels, model, SOFTWARE)
        assert uid == expected.SOPInstanceUID
        assert _comparable(data) == _comparable(_bytes(expected)), name

"""The node's SR and SC (encoded from a template built once per model) equal what highdicom builds per image."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from tests.serve.serve_helpers import iter_sr_items, radiograph

from medtk.runtime import Classifier, Prediction
from medtk.serve.identity import ModelIdentity
from medtk.serve.sc import CaptureTemplate, build_sc
from medtk.serve.sr import ReportTemplate, build_sr

SOFTWARE = "medtk 9.9"
# Set from the clock when a result is made: equal only if both were made in the same microsecond.
NOW = {0x00080012, 0x00080013, 0x00080023, 0x00080033, 0x0018A002, 0x00181012, 0x00181014}


def _identity(path) -> ModelIdentity:
    return ModelIdentity.of(Classifier(path, num_threads=1))


def _prediction(model: ModelIdentity, label: str, p_scored: float) -> Prediction:
    scored = model.scored_class(label)
    others = [name for name in model.labels if name != scored]
    probabilities = {scored: p_scored, **{name: (1 - p_scored) / len(others) for name in others}}
    return Prediction(label=label, class_index=model.labels.index(label), probabilities=probabilities,
                      cam=np.zeros((4, 4), np.float32), raw_cam=np.zeros((2, 2, len(model.labels)), np.float32),
                      source="array", threshold=model.threshold, positive=None, warnings=())


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
    return {
        "ct": pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True),
        # copied from the source's raw bytes when Little Endian (implicit VR: the dictionary's VR), else re-encoded
        "mr_implicit_vr": pydicom.dcmread(get_testdata_file("MR_small_implicit.dcm"), stop_before_pixels=True),
        "mr_big_endian": pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm"), stop_before_pixels=True),
        "mr_oblique": oblique, "cr_latin1": latin, "dx_utf8": unicode, "cr_sparse": sparse, "cr_odd_length": odd,
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
        for label, p in ((model.labels[0], 0.1234567), (model.labels[-1], 0.87654321)):
            prediction = _prediction(model, label, p)
            uid, data = template.render(source, prediction)
            expected = build_sr(_for_highdicom(source), prediction, model, SOFTWARE)
            assert uid == expected.SOPInstanceUID
            assert _comparable(data) == _comparable(_bytes(expected)), f"{name}, {label}"
            sr = pydicom.dcmread(io.BytesIO(data))
            report = hd.sr.Comprehensive3DSR.from_dataset(sr).content  # parses as TID 1500
            assert len(report.get_image_measurement_groups()) == 1
            assert sr.VerificationFlag == "UNVERIFIED" and "NOT FOR DIAGNOSTIC USE" in sr.SeriesDescription
            finding = next(i for i in iter_sr_items(sr) if i.ValueType == "CODE"
                           and i.ConceptNameCodeSequence[0].CodeValue == "121071")
            assert finding.ConceptCodeSequence[0].CodeMeaning == label
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
        if name == "mr_oblique":
            assert list(sc.PatientOrientation) == ["LP", "F"]
            continue
        expected = build_sc(_for_highdicom(source), pixels, model, SOFTWARE)
        assert uid == expected.SOPInstanceUID
        assert _comparable(data) == _comparable(_bytes(expected)), name

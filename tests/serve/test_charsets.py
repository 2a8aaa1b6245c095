"""Every character set of PS3.3 C.12.1.1.2 pydicom decodes is processed, results included; the others are
refused at C-STORE time (0xC000), never acknowledged and then failed in a worker."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from tests.serve.serve_helpers import radiograph, send_datasets, wait_outbox

from medtk.runtime import Classifier
from medtk.serve.assessment import Assessment
from medtk.serve.identity import ModelIdentity
from medtk.serve.sc import CaptureTemplate
from medtk.serve.scp import CANNOT_UNDERSTAND, check_instance
from medtk.serve.sr import ReportTemplate

# PS3.3 C.12.1.1.2, each defined term with a name in its repertoire (code extensions after an empty
# first value, the default repertoire, as senders write them: `\ISO 2022 IR 87`).
DEFINED_TERMS = {
    "ISO_IR 100": "Müller^Jürgen", "ISO_IR 101": "Dvořák^Řehoř", "ISO_IR 109": "Ħaġar^Ċensu",
    "ISO_IR 110": "Ķēniņš^Jānis", "ISO_IR 144": "Иванов^Пётр", "ISO_IR 127": "قباني^نزار",
    "ISO_IR 126": "Διονυσιος", "ISO_IR 138": "שרון^דבורה", "ISO_IR 148": "Işık^Çağrı", "ISO_IR 13": "ﾔﾏﾀﾞ^ﾀﾛｳ",
    "ISO_IR 166": "ทดสอบ^ชื่อ",
    "ISO 2022 IR 6": "Smith^John", "ISO 2022 IR 100": "Müller^Jürgen", "ISO 2022 IR 101": "Dvořák^Řehoř",
    "ISO 2022 IR 109": "Ħaġar^Ċensu", "ISO 2022 IR 110": "Ķēniņš^Jānis", "ISO 2022 IR 144": "Иванов^Пётр",
    "ISO 2022 IR 127": "قباني^نزار", "ISO 2022 IR 126": "Διονυσιος", "ISO 2022 IR 138": "שרון^דבורה",
    "ISO 2022 IR 148": "Işık^Çağrı", "ISO 2022 IR 13": "ﾔﾏﾀﾞ^ﾀﾛｳ", "ISO 2022 IR 166": "ทดสอบ^ชื่อ",
    "\\ISO 2022 IR 87": "山田^太郎=やまだ^たろう", "\\ISO 2022 IR 159": "山田^太郎", "\\ISO 2022 IR 149": "홍^길동",
    "\\ISO 2022 IR 58": "王^小东",
    "ISO_IR 192": "山田^太郎", "GB18030": "王^小东", "GBK": "王^小东",
}
NOT_DECODABLE = ("ISO_IR 203", "ISO 2022 IR 203")  # defined terms pydicom 3.0 has no codec for: refused
NAME_ROUND_TRIPS_IN_PYDICOM = set(DEFINED_TERMS) - {"\\ISO 2022 IR 58"}  # pydicom's IR 58 encoder mangles it


def _source(term: str, name: str, index: int = 0) -> pydicom.Dataset:
    """A CR in `term` holding `name`, as the node receives it: encoded by pydicom and read back raw."""
    ds = radiograph(np.full((16, 16), 40 + index, np.uint8))
    ds.SpecificCharacterSet = term.split("\\") if "\\" in term else term
    if term == "\\ISO 2022 IR 159":  # JIS X 0212 holds supplementary kanji only: with IR 87 for the rest
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 87", "ISO 2022 IR 159"]
    ds.PatientName = name
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    read = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    read.file_meta = ds.file_meta
    return read


def _terms(ds: pydicom.Dataset) -> list[str]:
    value = ds.SpecificCharacterSet
    return [value] if isinstance(value, str) else list(value)


def _raw(ds: pydicom.Dataset, keyword: str) -> bytes:
    """The element's value as its bytes in the file (the node copies them)."""
    data = io.BytesIO()
    ds.save_as(data, enforce_file_format=True)
    element = pydicom.dcmread(io.BytesIO(data.getvalue())).get_item(keyword)
    return bytes(element.value)


@pytest.fixture(scope="module")
def templates(serve_models):
    model = ModelIdentity.of(Classifier(serve_models["op"], num_threads=1))
    return model, ReportTemplate(model, "medtk 9.9"), CaptureTemplate(model, "medtk 9.9")


@pytest.mark.parametrize("term", sorted(DEFINED_TERMS))
def test_every_decodable_defined_term_is_accepted_and_its_results_carry_the_name(templates, term):
    model, report, capture = templates
    source = _source(term, DEFINED_TERMS[term])
    assert check_instance(source, 10**8) is None
    assessment = Assessment(label="pneumonia", scored_class="pneumonia", probability=0.9, threshold=model.threshold,
                            warnings=("input is 16-bit; the model was trained on 8-bit images",))
    for _, data in (report.render(source, assessment), capture.render(source, np.zeros((8, 8, 3), np.uint8))):
        result = pydicom.dcmread(io.BytesIO(data))
        assert _terms(result) == _terms(source)
        assert _raw(result, "PatientName") == _raw(source, "PatientName")
        assert str(result.PatientName) == str(source.PatientName)
        if term in NAME_ROUND_TRIPS_IN_PYDICOM:
            assert str(result.PatientName) == DEFINED_TERMS[term]
        assert "NOT FOR DIAGNOSTIC USE" in result.SeriesDescription


@pytest.mark.parametrize("term", [*NOT_DECODABLE, "ISO_IR 999", ["", "KOI8-R"]])
def test_a_character_set_pydicom_cannot_decode_is_refused_with_a_clear_comment(term):
    source = radiograph(np.zeros((16, 16), np.uint8))
    source.SpecificCharacterSet = term
    assert check_instance(source, 10**8) == (CANNOT_UNDERSTAND, "Specific Character Set not supported here")


@pytest.mark.slow
def test_iso_2022_names_over_c_store_reach_the_sr(start_node):
    node = start_node()
    sent = [_source("\\ISO 2022 IR 87", "山田^太郎=やまだ^たろう", 0), _source("\\ISO 2022 IR 149", "홍^길동", 1)]
    refused = radiograph(np.zeros((16, 16), np.uint8))
    refused.SpecificCharacterSet = "ISO_IR 203"
    assert send_datasets(node.dicom_port, [*sent, refused]) == [0, 0, CANNOT_UNDERSTAND]
    results = wait_outbox(node, 4)
    names = sorted(str(ds.PatientName) for ds in results if ds.Modality == "SR")
    assert names == sorted(["山田^太郎=やまだ^たろう", "홍^길동"])
    assert not list(node.spool.failed.iterdir())

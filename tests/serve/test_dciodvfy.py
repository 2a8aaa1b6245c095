"""Every result the node writes passes dciodvfy (dicom3tools): no "Error" line, and only the warnings
listed here, each for a reason."""

from __future__ import annotations

import re

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from tests.serve.serve_helpers import dciodvfy_findings, dicom_bytes, radiograph

from medtk.runtime import Classifier
from medtk.serve.assessment import Assessment, withheld
from medtk.serve.caption import caption_lines, compose
from medtk.serve.identity import ModelIdentity
from medtk.serve.sc import CaptureTemplate
from medtk.serve.sr import NOTICE, ReportTemplate

ACCEPTED = {
    # 99MEDTK is the private coding scheme of the model's own labels and quantities (a "99" designator,
    # PS3.3 8.2); dciodvfy knows only the standard's schemes.
    r"Unrecognized defined term <99MEDTK> for value 1 of attribute <Coding Scheme Designator>": "private scheme",
    # A source that names neither a body part nor a side: the SC's Laterality (type 2C) is empty, which
    # is what "unknown" is; making one up would be worse.
    r"is only permitted to be empty when actually unknown; .* attribute <Laterality>": "laterality unknown",
    # Patient and study attributes are copied from the source as it was sent (pydicom's CT and MR test
    # files carry these); a result does not correct the source's record.
    r"Value is zero for value 1 of attribute <Patient's Weight>": "the source's value",
    r"Name of Physician\(s\) Reading Study .* Retired Person Name form": "the source's value",
}


def _sources(chest_images) -> dict[str, pydicom.Dataset]:
    cr = radiograph(chest_images[0])  # CHEST, no side: an unpaired body part
    dx = radiograph(chest_images[1], modality="DX", body_part="CHEST")
    dx.ImageLaterality = "U"
    hand = radiograph(chest_images[2], modality="DX", body_part="HAND")
    hand.ImageLaterality = "L"  # paired: the side is in Image Laterality
    knee = radiograph(chest_images[3], body_part="KNEE")
    knee.Laterality = "R"
    japanese = radiograph(chest_images[4])
    japanese.SpecificCharacterSet, japanese.PatientName = ["", "ISO 2022 IR 87"], "山田^太郎"
    return {"cr_chest": cr, "dx_chest": dx, "dx_hand_left": hand, "cr_knee_right": knee, "cr_iso2022": japanese,
            "ct": pydicom.dcmread(get_testdata_file("CT_small.dcm")),
            "mr": pydicom.dcmread(get_testdata_file("MR_small.dcm"))}


def _read(ds: pydicom.Dataset) -> pydicom.Dataset:
    """As the node reads a received instance."""
    import io

    return pydicom.dcmread(io.BytesIO(dicom_bytes(ds)))


@pytest.fixture(scope="module")
def templates(serve_models):
    model = ModelIdentity.of(Classifier(serve_models["op"], num_threads=1))
    return ReportTemplate(model, "medtk 9.9"), CaptureTemplate(model, "medtk 9.9")


def test_results_pass_dciodvfy(templates, chest_images, tmp_path):
    report, capture = templates
    assessments = {
        "finding": Assessment("pneumonia", "pneumonia", 0.97, 0.4, ("input is 16-bit; the model was trained on "
                                                                    "8-bit images",)),
        "withheld": withheld("input modality is CT; the model was trained on CR/DX images only", ()),
    }
    unexplained, seen = {}, []
    for name, source in _sources(chest_images).items():
        source = _read(source)
        for kind, assessment in assessments.items():
            picture = compose(np.zeros((source.Rows, source.Columns), np.uint8), caption_lines(assessment, NOTICE), 2048)
            for result, (_, data) in (("sr", report.render(source, assessment)), ("sc", capture.render(source, picture))):
                path = tmp_path / f"{name}-{kind}-{result}.dcm"
                path.write_bytes(data)
                lines = dciodvfy_findings(path)
                seen += lines
                bad = [line for line in lines if line.startswith("Error")
                       or not any(re.search(pattern, line) for pattern in ACCEPTED)]
                if bad:
                    unexplained[path.name] = bad
    assert unexplained == {}
    assert any("99MEDTK" in line for line in seen)  # dciodvfy did read the SRs

"""The record says what the runtime says: every warning is in the SR (as text a viewer shows), burned into
the SC and in the HTTP answer; an image of a modality the model was not trained on gets no finding and
no probability anywhere, only the reason."""

from __future__ import annotations

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from tests.serve.serve_helpers import (dicom_bytes, iter_sr_items, radiograph, running_node, send_datasets,
                                       wait_outbox, with_metadata)

from medtk.runtime import load_decoded
from medtk.serve.assessment import Assessment
from medtk.serve.caption import caption_lines, compose
from medtk.serve.sr import NOTICE

CHEST_XRAY = {"modalities": ("CR", "DX"), "bit_depths": (8,), "photometric": ("MONOCHROME2",)}
FINDING, PROBABILITY, COMMENT = "121071", "probability", "121106"


def _twelve_bit_cr(image: np.ndarray) -> pydicom.Dataset:
    """A CR as real ones are stored: 12 bits in 16."""
    ds = radiograph(image)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelData = (image.astype(np.uint16) * 16).tobytes()
    return ds


def _sources(chest_images) -> dict[str, pydicom.Dataset]:
    return {"ct": pydicom.dcmread(get_testdata_file("CT_small.dcm")),
            "mr": pydicom.dcmread(get_testdata_file("MR_small.dcm")),
            "cr12": _twelve_bit_cr(chest_images[0]), "dx": radiograph(chest_images[1], modality="DX")}


def _expected_notes(name: str, source: pydicom.Dataset) -> list[str]:
    if name in ("ct", "mr"):
        return [f"No finding issued: input modality is {source.Modality}; the model was trained on CR/DX images only",
                "input is 16-bit; the model was trained on 8-bit images",
                f"input modality is {source.Modality}; the model was trained on CR/DX"]
    return ["input is 12-bit; the model was trained on 8-bit images"] if name == "cr12" else []


def _content(sr: pydicom.Dataset, concept: str) -> list:
    return [item for item in iter_sr_items(sr) if item.get("ConceptNameCodeSequence")
            and item.ConceptNameCodeSequence[0].CodeValue == concept]


@pytest.mark.slow
def test_results_and_http_carry_every_warning_and_withhold_other_modalities(serve_models, chest_images, tmp_path):
    model = with_metadata(serve_models["op"], tmp_path / "chest_xray.tflite", intensity=CHEST_XRAY)
    sources = _sources(chest_images)
    with running_node(model, tmp_path / "spool") as node:
        assert send_datasets(node.dicom_port, list(sources.values())) == [0] * len(sources)
        results = wait_outbox(node, 2 * len(sources))
        answers = {name: httpx.post(f"http://127.0.0.1:{node.http_port}/v1/predict?cam=1", content=dicom_bytes(ds),
                                    headers={"Content-Type": "application/dicom"}, timeout=30).json()
                   for name, ds in sources.items()}
    for name, source in sources.items():
        notes = _expected_notes(name, source)
        sr = next(ds for ds in results if ds.Modality == "SR" and ds.CurrentRequestedProcedureEvidenceSequence[0]
                  .ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID)
        assert [item.TextValue for item in _content(sr, COMMENT)] == notes, name
        assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "PARTIAL"
        answer = answers[name]
        withheld = name in ("ct", "mr")
        assert answer["withheld"] == (notes[0].removeprefix("No finding issued: ") if withheld else None)
        assert answer["warnings"] == notes[1:] if withheld else answer["warnings"] == notes
        if withheld:  # nothing anywhere that reads as a finding
            assert not _content(sr, FINDING) and not _content(sr, PROBABILITY)
            assert not [item for item in iter_sr_items(sr) if item.ValueType == "NUM"]
            assert answer["label"] is None and answer["probabilities"] is None and answer["positive"] is None
            assert "cam_overlay_png" not in answer
            assessment = Assessment(None, None, None, None, tuple(notes[1:]), answer["withheld"])
        else:
            (finding,) = _content(sr, FINDING)
            assert finding.ConceptCodeSequence[0].CodeMeaning == answer["label"]
            (probability,) = _content(sr, PROBABILITY)
            assert float(probability.MeasuredValueSequence[0].NumericValue) == pytest.approx(
                answer["probabilities"]["pneumonia"], abs=1e-6)
            assessment = Assessment(answer["label"], "pneumonia", float(probability.MeasuredValueSequence[0]
                                    .FloatingPointValue), 0.4, tuple(notes))
        sc = next(ds for ds in results if ds.Modality == "OT"
                  and ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID)
        if withheld:  # the bare image (no CAM of a finding that was not issued) under the reason
            path = tmp_path / f"{name}.dcm"
            path.write_bytes(dicom_bytes(source))
            expected = compose(load_decoded(path, 10**8).pixels, caption_lines(assessment, NOTICE), 2048)
            np.testing.assert_array_equal(sc.pixel_array, expected)
        else:  # the caption band is exactly the finding and every warning
            band = compose(np.zeros((8, 8), np.uint8), caption_lines(assessment, NOTICE), 2048)
            rows = band.shape[0] - 512  # 8x8 is enlarged to 512x512 under the band
            np.testing.assert_array_equal(sc.pixel_array[:rows], band[:rows])


def test_a_model_that_records_no_modalities_says_so(start_node, dicom_files):
    node = start_node()  # the test models record no modalities
    answer = httpx.post(f"http://127.0.0.1:{node.http_port}/v1/predict", content=dicom_files["cr"].read_bytes(),
                        headers={"Content-Type": "application/dicom"}, timeout=30).json()
    assert answer["label"] is not None and answer["withheld"] is None
    assert answer["warnings"] == ["the model does not record which modalities it was trained on: this CR image "
                                  "could not be checked against them"]

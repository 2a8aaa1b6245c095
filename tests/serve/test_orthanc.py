"""End to end with a real PACS: storescu -> medtk serve -> Orthanc, results read back over Orthanc's REST."""

from __future__ import annotations

import pydicom
import pytest
from tests.serve.serve_helpers import Orthanc, free_port, iter_sr_items, send_datasets, storescu, wait_until

from medtk.runtime import Classifier

pytestmark = pytest.mark.slow


def _numbers(sr) -> dict[str, float]:
    return {i.ConceptNameCodeSequence[0].CodeValue: float(i.MeasuredValueSequence[0].NumericValue)
            for i in iter_sr_items(sr) if i.ValueType == "NUM"}


def test_results_arrive_in_the_pacs(start_node, orthanc, dicom_files, serve_models):
    node = start_node(forward=(_destination(orthanc),))
    files = [dicom_files["cr"], dicom_files["ct"], dicom_files["cr_j2k"]]
    for sent, extra in ((files[:2], ()), (files[2:], ("--propose-j2k-lossless",))):
        result = storescu(node.dicom_port, sent, calling_ae="MODALITY", extra=extra)
        assert result.returncode == 0, result.stdout + result.stderr
    orthanc.wait_for(2 * len(files))
    stored = orthanc.datasets_by_modality()
    classifier = Classifier(serve_models["op"], num_threads=1)
    for path in files:
        source, expected = pydicom.dcmread(path), classifier.predict(path)
        sr = next(ds for ds in stored["SR"] if _referenced(ds) == source.SOPInstanceUID)
        sc = next(ds for ds in stored["OT"] if ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID)
        finding = next(i for i in iter_sr_items(sr) if i.ValueType == "CODE"
                       and i.ConceptNameCodeSequence[0].CodeValue == "121071")
        assert finding.ConceptCodeSequence[0].CodeMeaning == expected.label
        assert _numbers(sr)["probability"] == pytest.approx(expected.probabilities["pneumonia"], abs=1e-4)
        assert _numbers(sr)["threshold"] == pytest.approx(0.4)
        for result_ds in (sr, sc):
            assert result_ds.StudyInstanceUID == source.StudyInstanceUID
            assert result_ds.SeriesInstanceUID != source.SeriesInstanceUID
            assert result_ds.PatientID == source.PatientID
        assert sr.VerificationFlag == "UNVERIFIED"
    # Orthanc stores before it answers, so the node forgets a result a moment after the PACS has it.
    slug = node.config.forward[0].slug
    wait_until(lambda: node.spool.pending_count(slug) == 0, "the forward queue drains")


def test_destination_down_then_up(start_node, tmp_path, dicom_files):
    pacs = Orthanc(tmp_path / "later", http_port=free_port(), dicom_port=free_port())
    node = start_node(forward=(_destination(pacs),), retry_initial_seconds=0.2, retry_max_seconds=0.5)
    assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files[n]) for n in ("cr", "mr")]) == [0, 0]
    slug = node.config.forward[0].slug
    wait_until(lambda: node.spool.pending_count(slug) == 4, "four results held while the PACS is down")
    pacs.start()
    try:
        assert len(pacs.wait_for(4, timeout=30)) == 4
        wait_until(lambda: node.spool.pending_count(slug) == 0, "the forward queue drains")
        assert len(list(node.spool.outbox.glob("*.dcm"))) == 4  # the outbox keeps a copy
    finally:
        pacs.stop()


def _destination(pacs: Orthanc):
    from medtk.serve.config import Destination

    return Destination.parse(pacs.destination)


def _referenced(sr) -> str:
    return (sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
            .ReferencedSOPSequence[0].ReferencedSOPInstanceUID)

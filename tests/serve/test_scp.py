"""The Storage SCP with real senders (pynetdicom and dcmtk's storescu) and the results it writes."""

from __future__ import annotations

import subprocess
import time

import highdicom as hd
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, RLELossless
from pynetdicom import AE
from tests.serve.serve_helpers import (LOOPBACK, iter_sr_items, radiograph, send_datasets, storescu, wait_outbox,
                                       wait_until)

from medtk.runtime import Classifier
from medtk.serve.uids import result_uid


def _by_modality(datasets) -> dict[str, list]:
    out: dict[str, list] = {}
    for ds in datasets:
        out.setdefault(str(ds.Modality), []).append(ds)
    return out


def test_sr_and_sc_for_each_instance(start_node, dicom_files, serve_models):
    node = start_node()
    sources = [pydicom.dcmread(dicom_files[name]) for name in ("ct", "mr", "cr", "dx", "cr_rle", "cr_j2k")]
    assert send_datasets(node.dicom_port, sources) == [0] * len(sources)
    results = _by_modality(wait_outbox(node, 2 * len(sources)))
    assert len(results["SR"]) == len(sources) and len(results["OT"]) == len(sources)
    classifier = Classifier(serve_models["op"], num_threads=1)
    for source in sources:
        sr = next(ds for ds in results["SR"] if ds.StudyInstanceUID == source.StudyInstanceUID
                  and ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
                  .ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID)
        expected = classifier.predict(dicom_files[next(k for k, v in dicom_files.items()
                                                       if pydicom.dcmread(v).SOPInstanceUID == source.SOPInstanceUID)])
        _check_sr(sr, source, expected, node.model)
        sc = next(ds for ds in results["OT"] if ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID)
        assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.SeriesInstanceUID != source.SeriesInstanceUID
        assert sc.PatientID == source.PatientID and sc.BurnedInAnnotation == "YES"
        assert "NOT FOR DIAGNOSTIC USE" in sc.SeriesDescription
        assert sc.SOPInstanceUID == result_uid(source.SOPInstanceUID, node.model.file_sha256, "sc")
        assert sc.Rows > source.Rows and sc.Columns >= source.Columns  # caption band above (test_caption.py)
    assert len({ds.SeriesInstanceUID for ds in results["SR"] if ds.StudyInstanceUID == sources[2].StudyInstanceUID}) == 1


def _check_sr(sr, source, expected, model) -> None:
    assert sr.SOPInstanceUID == result_uid(source.SOPInstanceUID, model.file_sha256, "sr")
    assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "PARTIAL"
    assert sr.PatientID == source.PatientID and sr.StudyInstanceUID == source.StudyInstanceUID
    assert "NOT FOR DIAGNOSTIC USE" in sr.SeriesDescription
    report = hd.sr.Comprehensive3DSR.from_dataset(_roundtrip(sr)).content  # parses as TID 1500
    groups = report.get_image_measurement_groups()
    assert len(groups) == 1
    items = list(iter_sr_items(sr))
    finding = [i for i in items if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "121071"]
    assert finding[0].ConceptCodeSequence[0].CodeMeaning == expected.label
    numbers = {i.ConceptNameCodeSequence[0].CodeValue: float(i.MeasuredValueSequence[0].NumericValue)
               for i in items if i.ValueType == "NUM"}
    assert numbers["probability"] == pytest.approx(expected.probabilities["pneumonia"], abs=1e-4)
    assert numbers["threshold"] == pytest.approx(0.4)
    images = [i for i in items if i.ValueType == "IMAGE"]
    assert images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    texts = {i.ConceptNameCodeSequence[0].CodeMeaning: i.TextValue for i in items if i.ValueType == "TEXT"}
    assert texts["Algorithm Name"] == model.name and texts["Algorithm Version"] == model.version
    parameters = [i.TextValue for i in items if i.ValueType == "TEXT"
                  and i.ConceptNameCodeSequence[0].CodeMeaning == "Algorithm Parameters"]
    assert f"weights_sha256={model.weights_sha256}" in parameters


def _roundtrip(ds):
    import io

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def test_storescu_sends_and_resend_replaces(start_node, dicom_files):
    node = start_node()
    files = [dicom_files["cr"], dicom_files["ct"]]
    result = storescu(node.dicom_port, files)
    assert result.returncode == 0, result.stdout + result.stderr
    first = {ds.SOPInstanceUID for ds in wait_outbox(node, 4)}
    assert storescu(node.dicom_port, files).returncode == 0  # the modality sends again
    time.sleep(1.0)
    second = {ds.SOPInstanceUID for ds in wait_outbox(node, 4)}
    assert first == second and len(second) == 4  # replaced, not duplicated


def test_malformed_instances_fail_and_the_node_keeps_serving(start_node, dicom_files, chest_images):
    node = start_node()
    no_pixels = pydicom.dcmread(dicom_files["cr"])
    del no_pixels.PixelData
    no_pixels.SOPInstanceUID = pydicom.uid.generate_uid()
    too_big = radiograph(chest_images[6])
    too_big.Rows = too_big.Columns = 60_000  # the header lies about its size
    statuses = send_datasets(node.dicom_port, [no_pixels, too_big])
    assert statuses == [0xA900, 0xC000]
    # a transfer syntax the node does not offer: the context is refused, the association survives
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(no_pixels.SOPClassUID, ["1.2.840.10008.1.2.4.100"])  # MPEG2
    ae.add_requested_context(no_pixels.SOPClassUID, [pydicom.uid.ExplicitVRLittleEndian])
    association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    assert association.is_established
    mpeg = [c for c in association.rejected_contexts if c.transfer_syntax[0] == "1.2.840.10008.1.2.4.100"]
    assert mpeg, "the MPEG-2 context should have been rejected"
    good = pydicom.dcmread(dicom_files["cr"])
    assert association.send_c_store(good).Status == 0
    association.release()
    # a decodable header with broken compressed pixel data is acknowledged, then parked in failed/ (native
    # pixel data shorter than its header says is refused at once: test_admission.py)
    broken = radiograph(chest_images[7], transfer_syntax=RLELossless)
    broken.PixelData = encapsulate([bytes(64)])  # an RLE header with no segments
    assert send_datasets(node.dicom_port, [broken]) == [0]
    wait_until(lambda: list(node.spool.failed.glob("*.txt")), "the broken instance is set aside", timeout=20)
    assert len(list(node.spool.failed.glob("*.dcm"))) == 1
    assert len(wait_outbox(node, 2)) == 2  # only the good one produced results
    assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["mr"])]) == [0]


def test_jpeg_baseline_is_decoded(start_node, dicom_files, tmp_path):
    """dcmtk compresses (pydicom cannot encode JPEG), storescu sends it as it is."""
    jpeg = tmp_path / "cr_jpeg.dcm"
    done = subprocess.run(["dcmcjpeg", "--encode-baseline", str(dicom_files["dx"]), str(jpeg)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert pydicom.dcmread(jpeg).file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    node = start_node()
    result = storescu(node.dicom_port, [jpeg], extra=("--propose-jpeg8",))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(wait_outbox(node, 2)) == 2


def test_full_queue_answers_out_of_resources(start_node, dicom_files):
    node = start_node(queue_size=1)
    node.queue.reserve()
    try:
        assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])]) == [0xA700]
        assert list(node.spool.queue.glob("*.dcm")) == []  # refused work is not spooled
    finally:
        node.queue.release()
    assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])]) == [0]


def test_calling_ae_allow_list(start_node, dicom_files):
    node = start_node(allow_ae=("MODALITY1",))
    with pytest.raises(ConnectionError):
        send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])], calling_ae="INTRUDER")
    assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])], calling_ae="MODALITY1") == [0]


def test_rules_select_what_is_processed(start_node, dicom_files, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('default = "skip"\n[[rule]]\naction = "process"\nModality = ["CR", "DX"]\n')
    node = start_node(rules_file=rules)
    statuses = send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files[n]) for n in ("ct", "cr", "mr")])
    assert statuses == [0, 0, 0]  # skipped instances are acknowledged, not processed
    results = wait_outbox(node, 2)
    time.sleep(0.5)
    assert len(list(node.spool.outbox.glob("*.dcm"))) == 2 and {str(ds.Modality) for ds in results} == {"SR", "OT"}


def test_own_results_sent_back_are_not_processed_again(start_node, dicom_files):
    node = start_node()
    assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])]) == [0]
    sc = next(ds for ds in wait_outbox(node, 2) if ds.Modality == "OT")
    assert send_datasets(node.dicom_port, [sc]) == [0]
    time.sleep(0.5)
    assert len(list(node.spool.outbox.glob("*.dcm"))) == 2


@pytest.mark.parametrize("sent", [b"\x01\x00", b"\x01\x00\x00\x00\x01\x00" + b"\x00" * 10], ids=["header", "body"])
def test_a_stalled_sender_loses_its_association(start_node, monkeypatch, sent):
    """A client that stops mid-PDU (mid-header or mid-body) is disconnected after the read timeout instead
    of holding one of --max-associations for as long as TCP keeps the connection (hours; before, a
    --max-associations 1 node took no association for as long as one was stalled)."""
    import socket

    from medtk.serve import scp

    monkeypatch.setattr(scp, "NETWORK_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(scp, "ACSE_TIMEOUT_SECONDS", 2.0)  # pynetdicom frees the slot when negotiation times out
    node = start_node(max_associations=1)
    with socket.create_connection((LOOPBACK, node.dicom_port), timeout=15) as stalled:
        stalled.sendall(sent)  # an A-ASSOCIATE-RQ that never finishes
        started = time.monotonic()
        assert _until_closed(stalled) == A_ABORT, "the node should abort the stalled connection"
        assert time.monotonic() - started < 10
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context("1.2.840.10008.1.1")  # Verification
    deadline = time.monotonic() + 10
    while True:  # the one association slot is free again once pynetdicom has ended the stalled one
        association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
        if association.is_established or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    try:
        assert association.is_established and int(association.send_c_echo().Status) == 0x0000
    finally:
        association.release()


A_ABORT = b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x00"  # from the service provider, reason not specified


def _until_closed(sock) -> bytes:
    """Everything the node sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received

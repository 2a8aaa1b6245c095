"""kill -9 in the middle of a stream, start again on the same spool: nothing lost, nothing duplicated."""

from __future__ import annotations

import threading
import time

import pytest
from pydicom.uid import generate_uid
from tests.serve.serve_helpers import NodeProcess, free_port, radiograph, send_datasets

from medtk.runtime import Classifier
from medtk.serve.identity import ModelIdentity
from medtk.serve.uids import result_uid

pytestmark = pytest.mark.slow


def test_kill_9_mid_stream(tmp_path, serve_models, chest_images, orthanc):
    study = generate_uid()
    datasets = [radiograph(image, study_uid=study, number=i + 1) for i, image in enumerate(chest_images[:30])]
    node = NodeProcess(serve_models["op"], tmp_path / "spool", tmp_path / "node.log", free_port(), free_port(),
                       args=("--forward", orthanc.destination, "--workers", "1", "--threads", "1", "--retry-max", "1"))
    node.start()
    acknowledged: list[str] = []

    def send() -> None:
        from pynetdicom import AE

        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(datasets[0].SOPClassUID)
        association = ae.associate("127.0.0.1", node.dicom_port, ae_title="MEDTK")
        for ds in datasets:
            if not association.is_established:
                return
            status = association.send_c_store(ds)
            if "Status" in status and status.Status == 0:
                acknowledged.append(ds.SOPInstanceUID)
        if association.is_established:
            association.release()

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 12 and time.monotonic() < deadline:
        time.sleep(0.005)
    node.kill()
    sender.join(60)
    assert 12 <= len(acknowledged) < len(datasets), "the kill should land mid-stream"
    waiting = len(list((tmp_path / "spool" / "queue").glob("*.dcm")))

    node.start()  # same spool: acknowledged-but-unprocessed instances are picked up again
    unacknowledged = [ds for ds in datasets if ds.SOPInstanceUID not in acknowledged]
    resent = unacknowledged + [ds for ds in datasets if ds.SOPInstanceUID in acknowledged[:3]]  # a modality retries
    assert send_datasets(node.dicom_port, resent) == [0] * len(resent)
    orthanc.wait_for(2 * len(datasets), timeout=90)
    time.sleep(1.0)
    node.stop()

    model = ModelIdentity.of(Classifier(serve_models["op"], num_threads=1))
    stored = orthanc.datasets_by_modality()
    expected_sr = {result_uid(ds.SOPInstanceUID, model.file_sha256, "sr") for ds in datasets}
    expected_sc = {result_uid(ds.SOPInstanceUID, model.file_sha256, "sc") for ds in datasets}
    assert sorted(ds.SOPInstanceUID for ds in stored["SR"]) == sorted(expected_sr)  # one each, none extra
    assert sorted(ds.SOPInstanceUID for ds in stored["OT"]) == sorted(expected_sc)
    outbox = [p.stem for p in (tmp_path / "spool" / "outbox").glob("*.dcm")]
    assert sorted(outbox) == sorted(expected_sr | expected_sc)
    assert list((tmp_path / "spool" / "queue").glob("*.dcm")) == []
    assert list((tmp_path / "spool" / "failed").glob("*")) == []
    print(f"acknowledged before the kill: {len(acknowledged)}, waiting in the spool at the kill: {waiting}")

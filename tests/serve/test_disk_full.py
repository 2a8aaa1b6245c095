"""A spool disk that fills while images are queued: every acknowledged image keeps its place and gets its
results once space returns, without a restart or across one; health says 503 meanwhile (issue 21, 1)."""

from __future__ import annotations

import os

import pytest
from tests.disk_faults import fill_disk, small_disk
from tests.serve.serve_helpers import healthz, radiograph, received, send_datasets, wait_outbox, wait_until

from medtk.serve.spool import Spool

PATIENT_DATA = ("Test^Patient", "MEDTK-0001", "19700101")


@pytest.fixture
def disk(tmp_path):
    if os.geteuid() != 0 and not os.environ.get("CI"):  # in CI (root) a failing mount is a failure, not a skip
        pytest.skip("mounting a small tmpfs needs root; CI runs these as root")
    with small_disk(tmp_path / "disk", "16m") as folder:
        yield folder


def _broken(image):
    """A header the SCP accepts, pixels the worker cannot decode (it belongs in failed/): compressed pixel
    data whose content is broken (native pixel data of the wrong length is refused at C-STORE time)."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = radiograph(image, number=99, transfer_syntax=RLELossless)
    ds.PixelData = encapsulate([bytes(64)])  # an RLE header with no segments
    return ds


def _queue_then_fill(node, disk, datasets) -> object:
    """Acknowledge `datasets` while the worker waits for its interpreter, then fill the disk."""
    with node.classifiers.lease():  # the single worker cannot start: every image stays queued
        assert send_datasets(node.dicom_port, datasets) == [0] * len(datasets)
        return fill_disk(disk)


@pytest.mark.slow
def test_a_full_disk_holds_every_acknowledged_image_until_space_returns(start_node, disk, chest_images):
    node = start_node(spool=disk / "spool", queue_size=8)
    good = [radiograph(image, number=i + 1) for i, image in enumerate(chest_images[:4])]
    filler = _queue_then_fill(node, disk, [*good, _broken(chest_images[4])])

    wait_until(lambda: healthz(node.http_port)[0] == 503, "health says the node cannot make progress")
    wait_until(lambda: len(healthz(node.http_port)[1]["problems"]) == 2, "the writer and the broken instance wait")
    code, body = healthz(node.http_port)
    assert any("ENOSPC" in problem and "results cannot be committed" in problem for problem in body["problems"])
    assert any("wait for the spool" in problem for problem in body["problems"])
    assert not any(value in str(body) for value in PATIENT_DATA)
    assert send_datasets(node.dicom_port, [radiograph(chest_images[5], number=6)]) == [0xA700]
    assert list(node.spool.failed.iterdir()) == [] and len(list(node.spool.queue.glob("*.dcm"))) == 5
    assert node.writer.thread.is_alive() and all(thread.is_alive() for thread in node.queue.threads)
    metrics = node.metrics.render().decode()
    assert "medtk_serve_ready 0.0" in metrics and "medtk_serve_commit_retries_total 0.0" not in metrics

    filler.unlink()
    results = wait_outbox(node, 2 * len(good))
    wait_until(lambda: healthz(node.http_port)[0] == 200, "health recovers with the disk")
    referenced = {ds.SourceImageSequence[0].ReferencedSOPInstanceUID for ds in results if ds.Modality == "OT"}
    assert referenced == {ds.SOPInstanceUID for ds in good}
    wait_until(lambda: len(list(node.spool.failed.glob("*.txt"))) == 1, "the broken instance is set aside")
    assert list(node.spool.queue.glob("*.dcm")) == []
    assert "cannot decode DICOM pixel data" in next(node.spool.failed.glob("*.txt")).read_text()


@pytest.mark.slow
def test_a_full_disk_across_a_restart(start_node, disk, chest_images):
    datasets = [radiograph(image, number=i + 1) for i, image in enumerate(chest_images[:3])]
    first = start_node(spool=disk / "spool")
    filler = _queue_then_fill(first, disk, datasets)
    wait_until(lambda: healthz(first.http_port)[0] == 503, "the writer cannot commit")
    first.stop()
    assert len(list((disk / "spool" / "queue").glob("*.dcm"))) == 3
    assert list((disk / "spool" / "failed").iterdir()) == []

    again = start_node(spool=disk / "spool")  # the disk is still full
    wait_until(lambda: healthz(again.http_port)[0] == 503, "the restarted node cannot commit either")
    filler.unlink()
    wait_outbox(again, 2 * len(datasets))
    wait_until(lambda: healthz(again.http_port)[0] == 200, "health recovers with the disk")
    assert list(again.spool.queue.glob("*.dcm")) == [] and list(again.spool.failed.iterdir()) == []


def test_setting_aside_on_a_full_disk_keeps_everything_where_it_was(disk, tmp_path):
    spool = Spool(disk / "spool", ["P@h_1"])
    item = spool.admit("1.2.3", received(tmp_path, b"instance"))  # received on another disk: copied
    spool.commit(spool.admit("1.2.4", received(tmp_path, b"other")), {"2.25.7": b"result"})
    assert item.path.read_bytes() == b"instance" and item.path.stat().st_nlink == 1
    pending = spool.to_send("P@h_1")[0]
    filler = fill_disk(disk)
    assert spool.fail(item, "ValueError: broken") is False
    assert spool.reject("P@h_1", pending, "0xC000 Cannot Understand") is False
    assert item.path.exists() and pending.exists()
    assert list(spool.failed.iterdir()) == [] and list((disk / "spool" / "rejected" / "P@h_1").iterdir()) == []
    filler.unlink()
    assert spool.fail(item, "ValueError: broken") and spool.reject("P@h_1", pending, "0xC000 Cannot Understand")
    assert (spool.failed / f"{item.key}.txt").read_text() == "ValueError: broken\n"

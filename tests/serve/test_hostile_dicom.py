"""What a stranger on the DICOM port can make the node do (issue 21): real sockets, pynetdicom and dcmtk
against a real node; RSS measured on a node running as its own process."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification
from tests.serve.serve_helpers import (LOOPBACK, NodeProcess, association_request, free_port, padded_instance,
                                       peak_growth, send_datasets, send_files, storescu, wait_until)

from medtk.serve import dicom_connections, scp

MiB = 1024 * 1024
A_ABORT = b"\x07\x00\x00\x00\x00\x04\x00\x00\x02"  # from the service provider; the reason byte follows


def _echo(port: int, called_ae: str = "MEDTK") -> bool:
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    association = ae.associate(LOOPBACK, port, ae_title=called_ae)
    if not association.is_established:
        return False
    try:
        return int(association.send_c_echo().Status) == 0x0000
    finally:
        association.release()


def _answer(sock: socket.socket) -> bytes:
    """What the node sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


@pytest.fixture
def tmpdir_for_pynetdicom(tmp_path, monkeypatch) -> Path:
    """pynetdicom receives data sets into $TMPDIR: a folder of the test's own, to find what is left there."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_oversized_association_request_is_refused_before_it_is_read(start_node):
    node = start_node()
    with socket.create_connection((LOOPBACK, node.dicom_port), timeout=5) as hostile:
        hostile.sendall(struct.pack(">BBL", 0x01, 0, 300 * MiB))  # "300 MB of association request follow"
        started = time.monotonic()
        assert _answer(hostile) == A_ABORT + b"\x06"  # invalid PDU parameter value, then closed
        assert time.monotonic() - started < 2
    assert _echo(node.dicom_port)


def test_a_trickled_association_request_is_dropped_at_the_negotiation_deadline(start_node, monkeypatch):
    """One byte at a time never lets a read time out; the deadline counts from the connection."""
    monkeypatch.setattr(scp, "ACSE_TIMEOUT_SECONDS", 2.0)  # the network timeout stays 60 s
    node = start_node(max_associations=1)
    request = association_request()
    with socket.create_connection((LOOPBACK, node.dicom_port), timeout=0.3) as hostile:
        started, answer = time.monotonic(), b""
        for byte in request:
            hostile.sendall(bytes([byte]))
            try:
                answer = _answer(hostile)
                break
            except TimeoutError:
                continue
        assert answer == A_ABORT + b"\x00"  # reason not specified
        assert 1.5 < time.monotonic() - started < 4
    assert _echo(node.dicom_port)  # the one association slot is free


def test_connections_that_never_finish_negotiating_cannot_hold_the_slots(start_node):
    """pynetdicom starts two threads per connection; the node holds at most --max-associations and lets
    a new one in by closing the oldest that is still negotiating."""
    node = start_node(max_associations=2)
    threads = threading.active_count()
    half_open = [socket.create_connection((LOOPBACK, node.dicom_port), timeout=10) for _ in range(40)]
    try:
        for sock in half_open:
            sock.sendall(b"\x01\x00\x00")  # half an association request header
        # two connections open, two threads each; the others' threads end (before: all 40 pairs, 30 s)
        wait_until(lambda: threading.active_count() - threads <= 2 * 2, "closed connections' threads end", timeout=5)
        assert _echo(node.dicom_port)
        closed = [sock for sock in half_open[:-2] if _answer(sock) == b""]
        assert len(closed) == len(half_open) - 2
    finally:
        for sock in half_open:
            sock.close()


def test_an_idle_association_gives_its_slot_to_a_new_connection(start_node, monkeypatch):
    """One PDU a minute kept an association's slot for ever; at the limit the longest idle one makes room."""
    monkeypatch.setattr(dicom_connections, "IDLE_YIELDS_SECONDS", 2.0)
    node = start_node(max_associations=1)
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    idle = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    assert idle.is_established and idle.send_c_echo().Status == 0
    assert not _echo(node.dicom_port)  # busy, not idle long enough: the new one is closed
    time.sleep(2.2)
    assert _echo(node.dicom_port)
    wait_until(lambda: not idle.is_established, "the idle association is closed", timeout=5)


def test_an_established_association_that_sends_a_pdu_over_the_advertised_maximum_is_aborted(start_node):
    node = start_node(max_pdu_bytes=4096)
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    assert association.is_established and association.acceptor.maximum_length == 4096
    association.dul.socket.send(struct.pack(">BBL", 0x04, 0, 4097))
    wait_until(lambda: association.is_aborted, "the node aborts the association", timeout=5)
    assert _echo(node.dicom_port)


def test_a_data_set_over_the_limit_ends_the_association_and_leaves_nothing(start_node, tmp_path,
                                                                          tmpdir_for_pynetdicom):
    node = start_node(max_dataset_bytes=MiB)
    pixels = np.full((64, 64), 9, np.uint8)
    small, large = padded_instance(tmp_path / "small.dcm", pixels, MiB // 2), padded_instance(
        tmp_path / "large.dcm", pixels, 3 * MiB)
    assert send_files(node.dicom_port, [small]) == [0x0000]  # a data set under the limit, received into a file
    # the association ended mid-data-set (the sender learns it only by its answer timeout)
    assert send_files(node.dicom_port, [large, small], answer_within=3) == [None, None]
    wait_until(lambda: not list(tmpdir_for_pynetdicom.iterdir()), "the partial data set is removed", timeout=5)
    assert list(node.spool.incoming.iterdir()) == []
    assert send_datasets(node.dicom_port, [pydicom.dcmread(small)]) == [0x0000]  # the node keeps serving


def test_a_deflated_data_set_is_inflated_into_the_spool(start_node, tmp_path, tmpdir_for_pynetdicom):
    node = start_node(max_dataset_bytes=4 * MiB)
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64).astype(np.uint8)
    deflated = padded_instance(tmp_path / "deflated.dcm", pixels, 2 * MiB, deflated=True)
    bomb = padded_instance(tmp_path / "bomb.dcm", pixels, 64 * MiB, deflated=True)
    assert deflated.stat().st_size < 64 * 1024 and bomb.stat().st_size < 128 * 1024
    assert send_files(node.dicom_port, [deflated, bomb]) == [0x0000, 0xC000]
    wait_until(lambda: len(list(node.spool.outbox.glob("*.dcm"))) == 2, "the inflated instance is processed")
    assert list(node.spool.incoming.iterdir()) == [] and list(tmpdir_for_pynetdicom.iterdir()) == []
    assert list(node.spool.failed.iterdir()) == []  # the worker read the inflated copy


def test_an_association_addressed_to_another_ae_is_rejected(start_node, dicom_files):
    node = start_node()
    for called, accepted in (("WHATEVER", False), ("MEDTK", True)):
        echo = subprocess.run(["echoscu", "-aec", called, LOOPBACK, str(node.dicom_port)], capture_output=True,
                              text=True, timeout=30)
        assert (echo.returncode == 0) == accepted, echo.stdout + echo.stderr
    rejected = storescu(node.dicom_port, [dicom_files["cr"]], called_ae="PACS")
    assert rejected.returncode != 0 and "Called AE Title Not Recognized" in rejected.stdout + rejected.stderr
    assert list(node.spool.queue.iterdir()) == [] and list(node.spool.outbox.iterdir()) == []


@pytest.fixture
def node_process(tmp_path, serve_models, monkeypatch):
    """A node as its own process (for its RSS), receiving into a $TMPDIR of the test's own."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    processes = []

    def start(*args: str) -> NodeProcess:
        process = NodeProcess(serve_models["op"], tmp_path / "spool", tmp_path / "node.log", free_port(), free_port(),
                              args=("--workers", "1", "--threads", "1", *args))
        processes.append(process.start())
        return process

    yield start, folder
    for process in processes:
        process.stop()


@pytest.mark.slow
def test_a_deflate_bomb_is_refused_with_the_node_memory_bounded(node_process, tmp_path, dicom_files):
    """~0.5 MB on the wire that inflates to 512 MiB: the node inflates at most --max-dataset-bytes, 1 MiB
    at a time, to disk. (Before, pydicom inflated it whole in memory: ~2x its size in RSS.)"""
    start, tmpdir = node_process
    node = start("--max-dataset-bytes", str(64 * MiB))
    assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])]) == [0x0000]  # warm up
    wait_until(lambda: len(list((node.spool / "outbox").glob("*.dcm"))) == 2, "the worker has run the model once")
    bomb = padded_instance(tmp_path / "bomb.dcm", np.zeros((64, 64), np.uint8), 512 * MiB, deflated=True)
    statuses, grown = peak_growth(node.process.pid, lambda: send_files(node.dicom_port, [bomb]))
    assert statuses == [0xC000]
    assert grown < 32 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB"
    assert list((node.spool / "incoming").iterdir()) == [] and list(tmpdir.iterdir()) == []


@pytest.mark.slow
def test_large_data_sets_are_received_on_disk_not_in_memory(node_process, tmp_path):
    """A 48 MiB data set under the limit raises the node's peak RSS by little (before: ~3x its size, in
    memory, decoded and encoded again); a 96 MiB one over it ends the association with nothing left."""
    rules = tmp_path / "skip.toml"
    rules.write_text('default = "skip"\n')  # received and acknowledged, not run through the model
    start, tmpdir = node_process
    node = start("--max-dataset-bytes", str(64 * MiB), "--rules", str(rules))
    pixels = np.full((64, 64), 3, np.uint8)
    warm, large, over = (padded_instance(tmp_path / f"{name}.dcm", pixels, size * MiB)
                         for name, size in (("warm", 1), ("large", 48), ("over", 96)))
    assert send_files(node.dicom_port, [warm]) == [0x0000]
    statuses, grown = peak_growth(node.process.pid, lambda: send_files(node.dicom_port, [large, over],
                                                                       answer_within=10))
    assert statuses == [0x0000, None]
    assert grown < 24 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB"
    wait_until(lambda: not list(tmpdir.iterdir()), "pynetdicom's files are removed", timeout=5)


def test_a_dicom_port_in_use_is_one_line_and_exit_2(serve_models, tmp_path):
    with socket.create_server((LOOPBACK, 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "medtk", "serve", str(serve_models["op"]), "--no-http",
                                 "--dicom-port", str(port), "--spool", str(tmp_path / "spool")],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("medtk: error:")]
    assert errors == [f"medtk: error: --dicom-port {port}: cannot listen on {LOOPBACK}:{port} (the port is in use)"]
    assert "Traceback" not in result.stderr


def test_a_c_store_without_a_data_set_is_refused_not_raised(start_node, dicom_files):
    from pynetdicom.dimse_primitives import C_STORE

    node = start_node()
    source = pydicom.dcmread(dicom_files["cr"])
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(source.SOPClassUID, [source.file_meta.TransferSyntaxUID])
    association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    assert association.is_established
    try:
        request = C_STORE()
        request.MessageID, request.Priority = 1, 2
        request.AffectedSOPClassUID, request.AffectedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
        association._reactor_checkpoint.clear()  # pause the reactor as pynetdicom's own send_c_* do
        while not association._is_paused:
            time.sleep(0.001)
        association.dimse.send_msg(request, association.accepted_contexts[0].context_id)  # command only
        _, answer = association.dimse.get_msg(block=True)
        association._reactor_checkpoint.set()
        assert answer is not None and answer.Status == 0xC000
    finally:
        association.release()

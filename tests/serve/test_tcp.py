"""Nagle off and immediate ACKs on every DICOM association the node accepts or requests (tcp.py).

Checked as socket options on live associations; what they are worth (~48 ms -> ~6 ms per small
C-STORE from a sender that keeps Nagle on) is measured in benchmarks/serve_throughput.py.
"""

from __future__ import annotations

import socket

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification
from tests.serve.serve_helpers import LOOPBACK, free_port

from medtk.serve import scp, tcp

pytestmark = pytest.mark.skipif(tcp.QUICKACK is None, reason="TCP_QUICKACK is Linux-only")


def _assert_tuned(sock) -> None:
    assert isinstance(sock, (tcp.QuickAckSocket, tcp.QuickAckSSLSocket))
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_tuned_keeps_the_connection_and_its_timeout():
    with socket.create_server((LOOPBACK, 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        accepted.settimeout(3.5)
        tuned = tcp.tuned(accepted)
        try:
            _assert_tuned(tuned)
            assert tuned.gettimeout() == 3.5
            client.sendall(b"ping")
            assert tuned.recv(4) == b"ping"
            tuned.sendall(b"pong")
            assert client.recv(4) == b"pong"
        finally:
            tuned.close()
            client.close()


def test_accepted_associations_are_tuned_and_keep_their_read_timeout(start_node, dicom_files):
    node = start_node()
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    ae.add_requested_context(pydicom.dcmread(dicom_files["cr"]).SOPClassUID)
    association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    try:
        assert association.is_established
        (accepted,) = node.scp._server.active_associations
        _assert_tuned(accepted.dul.socket.socket)
        assert accepted.dul.socket.socket.gettimeout() == scp.NETWORK_TIMEOUT_SECONDS
        assert int(association.send_c_store(pydicom.dcmread(dicom_files["cr"])).Status) == 0x0000
    finally:
        association.release()


def test_requested_associations_are_tuned():
    server_ae = AE(ae_title="PEER")
    server_ae.add_supported_context(Verification)
    port = free_port()
    server = server_ae.start_server((LOOPBACK, port), block=False)
    try:
        ae = AE(ae_title="MEDTK")
        ae.add_requested_context(Verification)
        association = ae.associate(LOOPBACK, port, ae_title="PEER",
                                   evt_handlers=[(evt.EVT_CONN_OPEN, tcp.tune_requested_association)])
        try:
            assert association.is_established
            _assert_tuned(association.dul.socket.socket)
            assert int(association.send_c_echo().Status) == 0x0000
        finally:
            association.release()
    finally:
        server.shutdown()


def test_the_forwarder_requests_tuned_associations(monkeypatch):
    """The forwarder passes the handler to every association it requests."""
    from pynetdicom import AE as RealAE

    from medtk.serve import delivery

    seen = []

    class RecordingAE(RealAE):
        def associate(self, *args, evt_handlers=(), **kwargs):
            seen.append(list(evt_handlers))
            return super().associate(*args, evt_handlers=evt_handlers, **kwargs)

    monkeypatch.setattr("pynetdicom.AE", RecordingAE)
    destination = delivery.Destination("PEER", LOOPBACK, free_port())
    with pytest.raises(delivery.DestinationDown):  # nobody listens: the association fails after the attempt
        with delivery.associate(destination, "MEDTK"):
            pass
    assert seen == [[(evt.EVT_CONN_OPEN, tcp.tune_requested_association)]]

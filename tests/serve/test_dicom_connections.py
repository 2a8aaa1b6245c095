"""serve/dicom_connections.py on a real TCP connection: a PDU body is read in large blocks and handed out
as pynetdicom asks for it (4096 bytes at a time), and never a byte past the PDU's end, so `select` still
tells pynetdicom when the next PDU is waiting."""

from __future__ import annotations

import select
import socket

import pytest
from tests.serve.serve_helpers import LOOPBACK
from tests.serve.test_pdu_guard import ASSOCIATE_RQ, pdu, pdv

from medtk.serve.dicom_connections import ConnectionPolicy, ConnectionTable
from medtk.serve.pdu_guard import GuardLimits

LIMITS = GuardLimits(max_pdu_bytes=128 * 1024, max_dataset_bytes=1 << 20, max_control_bytes=4096,
                     negotiation_seconds=30, pdu_seconds=60)


@pytest.fixture
def connection():
    """(the sender's socket, the node's guarded socket for it)."""
    with socket.create_server((LOOPBACK, 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        guarded = ConnectionPolicy(LIMITS, 10.0, ConnectionTable(4)).wrap_socket(accepted, server_side=True)
        try:
            yield sender, guarded
        finally:
            sender.close()
            guarded.close()


def read_pdu(sock) -> bytes:
    """One PDU as pynetdicom reads it: its 6-byte header, then its body 4096 bytes at a time."""
    header = sock.recv(6)
    length = int.from_bytes(header[2:], "big")
    body = bytearray()
    while len(body) < length:
        body += sock.recv(min(4096, length - len(body)))
    return header + bytes(body)


def waiting(sock) -> bool:
    return bool(select.select([sock], [], [], 0.5)[0])


def test_a_pdu_body_is_taken_in_one_read_and_handed_out_whole(connection):
    sender, guarded = connection
    first = pdu(0x04, pdv(bytes(range(256)) * 240, command=False, last=True))  # ~60 kB
    sender.sendall(ASSOCIATE_RQ + first)
    assert read_pdu(guarded) == ASSOCIATE_RQ
    assert guarded.recv(6) == first[:6]
    assert guarded.recv(4096) == first[6:4102]
    assert not waiting(guarded), "the rest of the body was read with the first block"
    rest = bytearray()
    while len(rest) < len(first) - 4102:
        rest += guarded.recv(4096)
    assert bytes(rest) == first[4102:]


def test_the_next_pdu_stays_in_the_socket_for_select_to_see(connection):
    sender, guarded = connection
    first = pdu(0x04, pdv(b"\x01" * 50_000, command=False, last=False))
    second = pdu(0x04, pdv(b"\x02" * 3_000, command=False, last=True))
    sender.sendall(ASSOCIATE_RQ + first + second)
    assert read_pdu(guarded) == ASSOCIATE_RQ
    assert read_pdu(guarded) == first
    assert waiting(guarded), "bytes of the next PDU were read ahead, out of select's sight"
    assert read_pdu(guarded) == second

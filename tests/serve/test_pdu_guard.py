"""`PduGuard` on byte streams: each bound refused at the header that announces it crossing, deadlines
on a clock the test holds. The node with real clients: tests/serve/test_hostile_dicom.py."""

from __future__ import annotations

import struct

import pytest

from medtk.serve.pdu_guard import ABORT_UNSPECIFIED, Breach, GuardLimits, PduGuard

LIMITS = GuardLimits(max_pdu_bytes=1000, max_dataset_bytes=5000, max_control_bytes=500, negotiation_seconds=30,
                     pdu_seconds=60)


def pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(body)) + body


def pdv(fragment: bytes, command: bool, last: bool, context: int = 1) -> bytes:
    control = (1 if command else 0) | (2 if last else 0)
    return struct.pack(">LBB", len(fragment) + 2, context, control) + fragment


ASSOCIATE_RQ = pdu(0x01, b"\x00" * 68)


def negotiated(at: float = 0.0) -> PduGuard:
    guard = PduGuard(LIMITS, accepted_at=at)
    guard.feed(ASSOCIATE_RQ, at)
    assert guard.negotiated
    return guard


def test_an_association_request_over_the_bound_is_refused_at_its_header():
    guard = PduGuard(LIMITS, accepted_at=0.0)
    with pytest.raises(Breach, match="PDU type 0x01 of 314572800 bytes is over the limit of 500"):
        guard.feed(struct.pack(">BBL", 0x01, 0, 300 * 1024 * 1024), 0.0)


def test_a_data_pdu_over_the_advertised_maximum_is_refused_at_its_header():
    guard = negotiated()
    guard.feed(pdu(0x04, pdv(b"x" * 990, command=False, last=True)), 1.0)  # 996 bytes: allowed
    with pytest.raises(Breach, match="P-DATA-TF PDU of 1001 bytes is over the advertised maximum of 1000"):
        guard.feed(struct.pack(">BBL", 0x04, 0, 1001), 1.0)


def test_data_before_the_association_request_is_refused():
    with pytest.raises(Breach, match="before the association request"):
        PduGuard(LIMITS, accepted_at=0.0).feed(pdu(0x04, pdv(b"x", command=True, last=True)), 0.0)


def test_a_data_set_is_counted_across_fragments_and_pdus_per_message():
    guard = negotiated()
    for _ in range(2):  # two messages of 4,900 bytes each: under the bound one by one
        guard.feed(pdu(0x04, pdv(b"c" * 80, command=True, last=True)), 1.0)
        for last in (False,) * 6 + (True,):
            guard.feed(pdu(0x04, pdv(b"d" * 700, command=False, last=last)), 1.0)
    guard.feed(pdu(0x04, pdv(b"c" * 80, command=True, last=True)), 1.0)
    for _ in range(7):
        guard.feed(pdu(0x04, pdv(b"d" * 700, command=False, last=False)), 1.0)
    header = pdu(0x04, pdv(b"d" * 700, command=False, last=True))[:12]  # PDU + PDV headers, no data yet
    with pytest.raises(Breach, match="data set of more than 5000 bytes"):
        guard.feed(header, 1.0)


def test_several_items_in_one_pdu_and_bytes_split_anywhere():
    guard = negotiated()
    stream = pdu(0x04, pdv(b"c" * 100, command=True, last=True) + pdv(b"d" * 400, command=False, last=False))
    stream += pdu(0x04, pdv(b"d" * 400, command=False, last=True))
    for at in range(len(stream)):  # one byte at a time: headers split across reads
        guard.feed(stream[at:at + 1], 1.0)
    assert guard.due() is None  # between PDUs, negotiated: nothing is due


def test_a_command_set_is_bounded_too():
    guard = negotiated()
    guard.feed(pdu(0x04, pdv(b"c" * 400, command=True, last=False)), 1.0)
    with pytest.raises(Breach, match="command set of more than 500 bytes"):
        guard.feed(pdu(0x04, pdv(b"c" * 400, command=True, last=True)), 1.0)


def test_an_item_running_past_its_pdu_is_refused():
    guard = negotiated()
    item = pdv(b"d" * 100, command=False, last=True)
    with pytest.raises(Breach, match="runs past the end"):
        guard.feed(struct.pack(">BBL", 0x04, 0, 50) + item[:50], 1.0)


def test_a_trickled_association_request_misses_the_negotiation_deadline():
    guard = PduGuard(LIMITS, accepted_at=100.0)
    for second, byte in enumerate(ASSOCIATE_RQ[:3]):  # one byte every 10 s
        guard.feed(bytes([byte]), 100.0 + 10 * second)
    assert guard.due() == 130.0
    with pytest.raises(Breach, match="association request not complete within 30 s") as breach:
        guard.feed(ASSOCIATE_RQ[3:4], 130.0)
    assert breach.value.abort_reason == ABORT_UNSPECIFIED


def test_a_pdu_once_started_must_complete_in_time():
    guard = negotiated()
    message = pdu(0x04, pdv(b"d" * 100, command=False, last=True))
    guard.feed(message[:10], 500.0)  # the clock starts at the PDU's first byte, not at the connection
    assert guard.due() == 560.0
    guard.feed(message[10:20], 559.0)
    with pytest.raises(Breach, match="PDU not complete within 60 s"):
        guard.check_time(560.0)

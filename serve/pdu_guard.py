"""`PduGuard`: the DICOM upper-layer byte stream a peer sends, checked against the node's bounds as it
arrives, before pynetdicom buffers it.

pynetdicom reads a PDU's 6-byte header (type, length) and then `length` bytes into memory, and gathers
every fragment of a message before its handler runs; it checks neither against anything. Fed every
byte a connection receives, this parser refuses, at the header that announces it:

- an A-ASSOCIATE-RQ (or any other non-data PDU) longer than `max_control_bytes`;
- a P-DATA-TF PDU longer than the maximum PDU length the node advertised (`max_pdu_bytes`; PS3.8 9.3.5
  forbids a sender to exceed it);
- a message whose data set fragments add up to more than `max_dataset_bytes`, or whose command set
  fragments add up to more than `max_control_bytes`;

and gives the time by which the next bytes must arrive: the association request must be complete
within `negotiation_seconds` of the connection, and a PDU, once its first byte arrived, within
`pdu_seconds`, however slowly its bytes trickle. Pure: bytes and clock readings in, a `Breach` out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

P_DATA_TF = 0x04
PDU_HEADER, PDV_HEADER = 6, 6  # type, reserved, length (4) | item length (4), context ID, control header
ABORT_UNSPECIFIED, ABORT_INVALID_PARAMETER = 0x00, 0x06  # A-ABORT reasons (PS3.8 9.3.8)


class Breach(Exception):
    """The peer crossed a bound; `abort_reason` is the A-ABORT reason to send before closing."""

    def __init__(self, message: str, abort_reason: int = ABORT_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.abort_reason = abort_reason


@dataclass(frozen=True)
class GuardLimits:
    max_pdu_bytes: int  # the Maximum Length the node advertises for P-DATA-TF PDUs
    max_dataset_bytes: int
    max_control_bytes: int  # A-ASSOCIATE-RQ and other non-data PDUs; a message's command set
    negotiation_seconds: float
    pdu_seconds: float


class PduGuard:
    """One connection's stream, as received (after TLS)."""

    def __init__(self, limits: GuardLimits, accepted_at: float) -> None:
        self.limits = limits
        self._negotiation_due = accepted_at + limits.negotiation_seconds
        self.negotiated = False  # the first PDU (the association request) has arrived whole
        self._header = bytearray()  # of the PDU being read
        self._pdu_type = 0
        self._pdu_left = 0  # bytes of the current PDU body still to come
        self._pdu_due: float | None = None  # set by a PDU's first byte
        self._item = bytearray()  # header of the PDV item being read (P-DATA-TF only)
        self._item_left = 0  # data bytes of the current PDV item still to come
        self._dataset_bytes = 0  # of the message being received
        self._command_bytes = 0

    def due(self) -> float | None:
        """The monotonic time by which the next bytes must have come; None between PDUs, once negotiated.
        Called on every read, so it builds nothing; `check_time` words a missed deadline."""
        if self.negotiated:
            return self._pdu_due
        return self._negotiation_due if self._pdu_due is None else min(self._negotiation_due, self._pdu_due)

    def body_left(self) -> int:
        """Bytes of the current PDU's body still to come; 0 between PDUs and while a header arrives."""
        return self._pdu_left

    def check_time(self, now: float) -> None:
        due = self.due()
        if due is None or now < due:
            return
        late = []
        if not self.negotiated and now >= self._negotiation_due:
            late.append((self._negotiation_due,
                         f"association request not complete within {self.limits.negotiation_seconds:g} s"))
        if self._pdu_due is not None and now >= self._pdu_due:
            late.append((self._pdu_due, f"PDU not complete within {self.limits.pdu_seconds:g} s"))
        if late:
            raise Breach(min(late)[1], ABORT_UNSPECIFIED)

    def feed(self, data: bytes, now: float) -> None:
        """Account for `data` (the next bytes received); raise `Breach` at the first bound crossed."""
        self.check_time(now)
        view, at = memoryview(data), 0
        while at < len(view):
            if self._pdu_left == 0 and len(self._header) < PDU_HEADER:
                if not self._header:
                    self._pdu_due = now + self.limits.pdu_seconds
                at = _fill(self._header, PDU_HEADER, view, at)
                if len(self._header) == PDU_HEADER:
                    self._start_pdu()
                continue
            body = view[at:at + self._pdu_left]
            if self._pdu_type == P_DATA_TF:
                self._feed_items(body)
            at += len(body)
            self._pdu_left -= len(body)
            if self._pdu_left == 0:
                self._end_pdu()

    def _start_pdu(self) -> None:
        self._pdu_type, _, length = struct.unpack(">BBL", self._header)
        limits = self.limits
        if self._pdu_type == P_DATA_TF:
            if not self.negotiated:
                raise Breach("P-DATA-TF before the association request")
            if length > limits.max_pdu_bytes:
                raise Breach(f"P-DATA-TF PDU of {length} bytes is over the advertised maximum of "
                             f"{limits.max_pdu_bytes}")
        elif length > limits.max_control_bytes:
            raise Breach(f"PDU type 0x{self._pdu_type:02X} of {length} bytes is over the limit of "
                         f"{limits.max_control_bytes}")
        self._pdu_left = length
        if length == 0:
            self._end_pdu()

    def _end_pdu(self) -> None:
        if self._pdu_type == P_DATA_TF and (self._item or self._item_left):
            raise Breach("a PDV item runs past the end of its P-DATA-TF PDU")
        self._header.clear()
        self._pdu_due = None
        self.negotiated = True

    def _feed_items(self, body: memoryview) -> None:
        at = 0
        while at < len(body):
            if self._item_left == 0 and len(self._item) < PDV_HEADER:
                at = _fill(self._item, PDV_HEADER, body, at)
                if len(self._item) == PDV_HEADER:
                    self._start_item()
                continue
            skipped = min(self._item_left, len(body) - at)  # data bytes are counted, not looked at
            at += skipped
            self._item_left -= skipped

    def _start_item(self) -> None:
        length, _, control = struct.unpack(">LBB", self._item)
        self._item.clear()
        if length < 2:
            raise Breach(f"PDV item length {length} is shorter than its own header")
        fragment = length - 2  # the context ID and the message control header are counted in the length
        if control & 0x01:  # command set fragment
            self._command_bytes = self._bounded(self._command_bytes + fragment, self.limits.max_control_bytes,
                                                "command set", last=bool(control & 0x02))
        else:
            self._dataset_bytes = self._bounded(self._dataset_bytes + fragment, self.limits.max_dataset_bytes,
                                                "data set", last=bool(control & 0x02))
        self._item_left = fragment

    @staticmethod
    def _bounded(total: int, limit: int, what: str, last: bool) -> int:
        """`total` after checking it; 0 after the last fragment, ready for the next message."""
        if total > limit:
            raise Breach(f"{what} of more than {limit} bytes")
        return 0 if last else total


def _fill(header: bytearray, size: int, data: memoryview, at: int) -> int:
    """Move what is missing of a `size`-byte header from `data[at:]` into `header`; the new position."""
    take = min(size - len(header), len(data) - at)
    header += data[at:at + take]
    return at + take

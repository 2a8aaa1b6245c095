"""Every connection the DICOM listener accepts: counted, tuned, and read through a `PduGuard`.

pynetdicom calls `wrap_socket` on its `ssl_context` for each accepted socket, in its accept loop, and
nothing else on it, so `ConnectionPolicy` stands in for a context, with or without TLS:

- A bounded number of connections. pynetdicom starts two threads per accepted connection and counts
  it against `maximum_associations` only once its association request has arrived, so connections that
  never finish one piled up threads without limit. Here at most `limit` are open: at the limit the
  oldest that has not finished its association request is closed to make room, else the association
  idle longest between PDUs, once idle `IDLE_YIELDS_SECONDS` (a peer sending one PDU a minute kept its
  slot for ever); when none is, the new connection is closed at once (no thread is started for it).
- Reads through the guard (pdu_guard.py): a PDU or data set over its bound, a stalled read (no data for
  `network_timeout`), an association request not complete within the negotiation deadline and a PDU
  trickled past its deadline end the connection with an A-ABORT and one log line. Each read waits at
  most until the earliest of these, so a peer sending one byte every 20 s no longer keeps it open.
- Nagle off and immediate ACKs (tcp.py): a sender that keeps Nagle on is not held ~40 ms per C-STORE.
- Reads of a PDU body in large blocks. pynetdicom asks for 4096 bytes at a time, 128 socket reads (each
  with its ACK and guard bookkeeping) for a 512 x 512 image; inside a body the read takes up to
  `READ_AHEAD_BYTES` of that PDU at once and hands them out as asked. Never past the PDU's end: between
  PDUs pynetdicom asks `select` whether data is waiting, and bytes held here would be invisible to it.
- TLS with the handshake in the association's thread. `SSLContext.wrap_socket` would handshake in
  the accept loop: one connection that never sends a ClientHello would stop the listener from
  accepting anyone else. With `do_handshake_on_connect=False` it happens on the association's first
  read, under the same deadlines, and a failed handshake ends only that association.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import threading
import time
from typing import Any, Callable

from medtk.serve.pdu_guard import ABORT_UNSPECIFIED, Breach, GuardLimits, PduGuard
from medtk.serve.tcp import QuickAckSocket, QuickAckSSLSocket, nagle_off

log = logging.getLogger(__name__)

ABORT_PDU = b"\x07\x00\x00\x00\x00\x04\x00\x00\x02"  # A-ABORT from the service provider; + reason byte
IDLE_YIELDS_SECONDS = 10.0  # an association idle this long between PDUs gives its slot to a new connection
READ_AHEAD_BYTES = 256 * 1024  # most one read takes of a PDU body (docstring)


class GuardedReads:
    """Mixin for the accepted socket classes: every `recv` under the guard's bounds and deadlines."""

    guard: PduGuard
    table: "ConnectionTable"
    network_timeout: float
    peer: str
    breached: bool

    def attach(self, guard: PduGuard, table: "ConnectionTable", network_timeout: float, peer: str) -> None:
        self.guard, self.table, self.network_timeout, self.peer, self.breached = (
            guard, table, network_timeout, peer, False)
        self.idle_since: float | None = None  # when its last PDU ended; None while one is arriving
        self._timeout = network_timeout
        self._ahead, self._ahead_at = b"", 0  # bytes of the current PDU body read but not yet handed out
        self.settimeout(network_timeout)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self._ahead_at < len(self._ahead):
            data = self._ahead[self._ahead_at:self._ahead_at + bufsize]
            self._ahead_at += len(data)
            return data
        if self.breached:
            return b""
        try:
            self._time_out_by(self.guard.due())
            wanted = bufsize if flags else max(bufsize, min(self.guard.body_left(), READ_AHEAD_BYTES))
            data = super().recv(wanted, flags)  # type: ignore[misc]
            now = time.monotonic()
            self.guard.feed(data, now)
            self.idle_since = now if self.guard.negotiated and self.guard.due() is None else None
            if self.guard.due() is None:
                self._time_out_by(None)  # between PDUs: the network timeout, as pynetdicom's idle timer
            if len(data) > bufsize:
                self._ahead, self._ahead_at = data, bufsize
                data = data[:bufsize]
            return data
        except Breach as breach:
            self.refuse(breach)
        except TimeoutError:
            self.refuse(self._why_late())
        except OSError as error:  # reset by the peer, a failed TLS handshake: the connection is over
            log.info("DICOM connection from %s ended: %s", self.peer, error.strerror or type(error).__name__)
            self.breached = True
        return b""  # pynetdicom reads the end of the stream as "connection closed" and ends the association

    def refuse(self, breach: Breach) -> None:
        """A-ABORT (best effort), then shut the connection down; pynetdicom closes it."""
        log.warning("DICOM connection from %s closed: %s", self.peer, breach)
        self.breached = True
        self.table.on_refused()
        try:
            self.settimeout(1.0)
            self.sendall(ABORT_PDU + bytes([breach.abort_reason]))  # type: ignore[attr-defined]
        except OSError:
            pass
        self.table.shut(self)

    def close(self) -> None:
        if hasattr(self, "table"):  # attached: every socket the policy hands to pynetdicom
            self.table.discard(self)
        super().close()  # type: ignore[misc]

    def _why_late(self) -> Breach:
        """After a read timed out: the deadline it hit, or the network timeout."""
        try:
            self.guard.check_time(time.monotonic())
        except Breach as late:
            return late
        return Breach(f"no data for {self.network_timeout:g} s", ABORT_UNSPECIFIED)

    def _time_out_by(self, due: float | None) -> None:
        """A read waits at most until `due` (rounded up to the second, so the socket's timeout changes
        about once a second, not at every read) and never longer than the network timeout."""
        timeout = self.network_timeout
        if due is not None:
            left = due - time.monotonic()
            if left <= 0:
                self.guard.check_time(due)
            timeout = min(timeout, float(math.ceil(left)))
        if timeout != self._timeout:
            self.settimeout(timeout)
            self._timeout = timeout


class GuardedSocket(GuardedReads, QuickAckSocket):
    """An accepted plain TCP connection."""


class GuardedSSLSocket(GuardedReads, QuickAckSSLSocket):
    """An accepted TLS connection (the listener context's `sslsocket_class`)."""


class ConnectionTable:
    """The open connections of one listener, oldest first; at most `limit`."""

    def __init__(self, limit: int, on_refused: Callable[[], None] = lambda: None) -> None:
        self.limit, self.on_refused = limit, on_refused
        self._open: dict[GuardedReads, None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._open)

    def make_room(self, peer: str) -> bool:
        """True when a new connection may open: below the limit, or after closing the oldest connection
        still negotiating, else the association idle longest (at least `IDLE_YIELDS_SECONDS`) between
        PDUs; False when every open connection has an association that is not idle that long."""
        with self._lock:
            if len(self._open) < self.limit:
                return True
            victim, why = next((c for c in self._open if not c.guard.negotiated), None), "association request unfinished"
            if victim is None:
                victim, why = self._idlest(time.monotonic() - IDLE_YIELDS_SECONDS), "association idle"
            if victim is None:
                return False
            del self._open[victim]
        log.warning("DICOM connection from %s closed to make room for %s: %s", victim.peer, peer, why)
        self.on_refused()
        self.shut(victim)
        return True

    def _idlest(self, since: float) -> GuardedReads | None:
        """The association idle between PDUs since `since` or earlier, the longest idle first (lock held)."""
        idle = [c for c in self._open if c.idle_since is not None and c.idle_since <= since]
        return min(idle, key=lambda c: c.idle_since, default=None)

    def add(self, connection: GuardedReads) -> None:
        with self._lock:
            self._open[connection] = None

    def discard(self, connection: GuardedReads) -> None:
        with self._lock:
            self._open.pop(connection, None)

    @staticmethod
    def shut(connection: Any) -> None:
        """Wake the connection's reader with end-of-stream; plain `shutdown`, safe from another thread
        (SSLSocket's own would drop its TLS state under the reader)."""
        try:
            socket.socket.shutdown(connection, socket.SHUT_RDWR)
        except OSError:
            pass


class ConnectionPolicy:
    """Applied to every accepted DICOM connection before pynetdicom reads from it (module docstring)."""

    def __init__(self, limits: GuardLimits, network_timeout: float, table: ConnectionTable,
                 context: ssl.SSLContext | None = None) -> None:
        self.limits, self.network_timeout, self.table = limits, network_timeout, table
        self.context = context
        if context is not None:
            context.sslsocket_class = GuardedSSLSocket

    def wrap_socket(self, sock: socket.socket, server_side: bool = False, **_: Any) -> socket.socket:
        accepted_at = time.monotonic()
        peer = _peer(sock)
        if not self.table.make_room(peer):
            log.warning("DICOM connection from %s refused: %d associations open", peer, len(self.table))
            self.table.on_refused()
            sock.close()
            raise ConnectionRefusedError("too many DICOM connections")  # socketserver drops it, no thread
        nagle_off(sock)
        if self.context is None:
            guarded: Any = GuardedSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        else:
            guarded = self.context.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=False)
        guarded.attach(PduGuard(self.limits, accepted_at), self.table, self.network_timeout, peer)
        self.table.add(guarded)
        return guarded


def end_unrequested(event: Any) -> None:
    """pynetdicom `EVT_CONN_CLOSE` handler: a connection closed before its association request arrived
    (state Sta2) ends its association thread now. pynetdicom's acceptor otherwise waits the whole ACSE
    timeout for a request that can no longer come, one thread per closed connection: a peer opening
    and closing connections fast piled up threads. An empty item reads there as that timeout."""
    assoc = event.assoc
    if assoc.is_acceptor and assoc.dul.state_machine.current_state == "Sta2":
        assoc.dul.to_user_queue.put(None)


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "an unknown peer"
    return f"{host}:{port}"

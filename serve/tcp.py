"""TCP settings for the node's DICOM associations, both ways: Nagle off, every read ACKed at once.

DICOM writes one message as several PDUs (a command, then data set fragments). Two timers meet there:
Nagle on the sender holds a small write until the previous one is ACKed, and the receiver's kernel
delays that ACK (up to 40 ms on Linux). Each end can fix only its own half, so the node does both:

- as a sender, Nagle off (TCP_NODELAY); pynetdicom leaves it on, and so do dcmtk and Orthanc as
  Debian packages them (unless their environment sets TCP_NODELAY=1);
- as a receiver, ACK at once (TCP_QUICKACK, Linux), re-armed after every read because the kernel
  drops back to delayed ACKs by itself.

Measured on loopback (benchmarks/RESULTS.md, "medtk serve"): small C-STOREs from a sender that keeps
Nagle on were acknowledged at 21/s and now ~140/s; results forwarded into such an Orthanc arrived at
5.4 images/s and now ~29.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only; elsewhere only Nagle is turned off


class QuickAckSocket(socket.socket):
    """A plain TCP socket that asks for an immediate ACK after every read (where the OS can)."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if QUICKACK is not None:
            self.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        return data


class QuickAckSSLSocket(ssl.SSLSocket):
    """The same for TLS (an `SSLContext.sslsocket_class`)."""

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        data = super().recv(buflen, flags)
        if QUICKACK is not None:
            self.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        return data


def nagle_off(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tuned(sock: socket.socket) -> socket.socket:
    """`sock` (connected TCP) with Nagle off and, where the OS has it, quick ACKs: the same connection
    and timeout, as a `QuickAckSocket` when it was a plain socket."""
    nagle_off(sock)
    if QUICKACK is None or type(sock) is not socket.socket:
        return sock
    timeout = sock.gettimeout()
    quick = QuickAckSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    quick.settimeout(timeout)
    return quick


def tune_requested_association(event: Any) -> None:
    """pynetdicom `EVT_CONN_OPEN` handler for associations the node requests (its forwarders)."""
    event.assoc.dul.socket.socket = tuned(event.assoc.dul.socket.socket)

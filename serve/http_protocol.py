"""uvicorn's h11 protocol with the two bounds it lacks against half-open connections.

uvicorn times out only a keep-alive connection that receives nothing, and any byte cancels that timer;
it has no deadline for a request line and headers. Its `limit_concurrency` counts connections, so 70
connections that sent half a request line made it answer 503 to every request, `/healthz` included,
for as long as they stayed open. Here:

- a connection that is idle (no request in progress: before its first request, between keep-alive
  requests, or still sending a body after its answer) is closed `header_timeout` seconds after it
  became idle, whatever it sends meanwhile;
- the server holds at most `limit` connections; a new one closes the oldest idle connection to make
  room, so idle and half-open connections never starve complete requests. Only when every connection
  has a request in progress is the new one closed. Requests in progress are bounded by the app (the
  body deadline of `/v1/predict`; the other endpoints answer at once).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class IdleConnections:
    """One server's connection limit and its idle connections, oldest first (event loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.idle: dict[BoundedH11Protocol, None] = {}

    def oldest_except(self, protocol: "BoundedH11Protocol") -> "BoundedH11Protocol | None":
        return next((p for p in self.idle if p is not protocol), None)


class BoundedH11Protocol(H11Protocol):
    """Pass as `uvicorn.Config(http=functools.partial(BoundedH11Protocol, header_timeout=..., idle=...))`."""

    def __init__(self, *args: Any, header_timeout: float, idle: IdleConnections, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.idle = header_timeout, idle
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.idle.limit:
            victim = self.idle.oldest_except(self)
            if victim is None:
                log.warning("HTTP connection from %s refused: %d requests in progress", _peer(self),
                            len(self.connections) - 1)
                transport.close()
                return
            log.info("HTTP connection from %s closed to make room: no request in progress", _peer(victim))
            victim.transport.close()
        self._become_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave_idle()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._busy():
            self._leave_idle()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._busy():
            self._become_idle()

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _become_idle(self) -> None:
        self._leave_idle()
        self.idle.idle[self] = None
        self._idle_timer = self.loop.call_later(self.header_timeout, self._idle_too_long)

    def _leave_idle(self) -> None:
        self.idle.idle.pop(self, None)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_too_long(self) -> None:
        self._idle_timer = None
        log.info("HTTP connection from %s closed: no complete request within %g s", _peer(self), self.header_timeout)
        self.transport.close()


def _peer(protocol: H11Protocol) -> str:
    return "%s:%d" % protocol.client if protocol.client else "an unknown peer"

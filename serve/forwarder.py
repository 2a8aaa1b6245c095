"""One sender thread per `--forward` destination: C-STORE the pending results, retry with backoff.

Results wait as files in `SPOOL/pending/<destination>/` (spool.py), so a destination that is down,
or a node that restarts, loses nothing: the thread keeps the oldest-first order, backs off
exponentially while the destination is unreachable, and removes a file only once the destination
answered success (or a warning). A failure *status* is the destination refusing that one object:
it moves to `rejected/` with the status, so one bad object cannot block the others forever.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from medtk.serve.config import Destination
from medtk.serve.metrics import NodeMetrics
from medtk.serve.spool import Spool
from medtk.serve.tcp import tune_requested_association

log = logging.getLogger(__name__)

RESULT_CLASSES = ("Comprehensive3DSRStorage", "SecondaryCaptureImageStorage")


class DestinationDown(Exception):
    """No association, or it broke mid-way: retry later."""


@dataclass
class Forwarder:
    destination: Destination
    spool: Spool
    metrics: NodeMetrics
    calling_ae: str
    retry_initial: float = 1.0
    retry_max: float = 60.0
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"medtk-forward-{self.destination.slug}", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        slug, delay = self.destination.slug, self.retry_initial
        gauge = self.metrics.forward_pending.labels(str(self.destination))
        while not self._stop.is_set():
            self._wake.clear()
            files = self.spool.to_send(slug)
            gauge.set(self.spool.pending_count(slug))
            if not files:
                self._wake.wait(5.0)
                continue
            try:
                self._send(files)
                delay = self.retry_initial
            except Exception as error:  # DestinationDown, or a socket / pynetdicom error: retry later
                self.metrics.errors.labels("forward").inc()
                log.warning("destination %s unavailable (%s: %s); retrying in %.1f s", self.destination,
                            type(error).__name__, error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)

    def _send(self, files: list[Path]) -> None:
        from pynetdicom import AE, evt, sop_class
        from pynetdicom.status import code_to_category

        ae = AE(ae_title=self.calling_ae)
        for name in RESULT_CLASSES:
            ae.add_requested_context(getattr(sop_class, name))
        ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = 15, 30, 60
        d = self.destination
        association = ae.associate(d.host, d.port, ae_title=d.ae_title,
                                   evt_handlers=[(evt.EVT_CONN_OPEN, tune_requested_association)])
        if not association.is_established:
            raise DestinationDown("association rejected or no answer")
        label = str(d)
        try:
            for path in files:
                if self._stop.is_set():
                    break
                if not path.exists():
                    continue
                status = association.send_c_store(path)
                if "Status" not in status:
                    raise DestinationDown("connection lost during C-STORE")
                code = int(status.Status)
                category = code_to_category(code)
                if category in ("Success", "Warning"):
                    self.spool.sent(path)
                    self.metrics.forwarded.labels(label, "sent").inc()
                else:
                    self.spool.reject(self.destination.slug, path, f"status 0x{code:04X} ({category})")
                    self.metrics.forwarded.labels(label, "rejected").inc()
                    log.warning("destination %s refused %s with status 0x%04X", d, path.stem[-12:], code)
        finally:
            if association.is_established:
                association.release()

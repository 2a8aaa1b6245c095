"""One sender thread per `--forward` destination: C-STORE the pending results, retry with backoff.

Results wait as files in `SPOOL/pending/<destination>/` (spool.py), so a destination that is down,
or a node that restarts, loses nothing. Each round sends the oldest first over one association
(delivery.py) and acts on each answer (faults.py):

- delivered (success, warning): the file leaves pending/;
- temporary (out of resources, unreachable, connection lost): the round ends and the whole destination
  backs off exponentially; the object stays where it is;
- permanent (a refusing status, a SOP class the destination did not accept): the object moves to
  rejected/<destination>/ with the reason, counted and reported by health, and the round goes on;
- uncertain (0x0110 processing failure, undefined codes): the object goes to the back of the order, so
  the others keep flowing. It counts as an attempt only when the destination accepted another object
  earlier in that association (the object's fault, not the destination's); after --forward-attempts
  such failures it is set aside. With no success before it, the round ends and the destination backs
  off: a destination failing everything sets nothing aside. Counts live in memory (reset by a restart).

The thread survives any exception (reported as the destination's problem, with backoff).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtk.serve.backoff import Backoff
from medtk.serve.config import Destination
from medtk.serve.delivery import Answer, DestinationDown, associate
from medtk.serve.faults import Verdict, describe_disk_fault, is_disk_fault
from medtk.serve.metrics import NodeMetrics
from medtk.serve.spool import Spool
from medtk.serve.threads import supervised_thread

log = logging.getLogger(__name__)


@dataclass
class Forwarder:
    destination: Destination
    spool: Spool
    metrics: NodeMetrics
    calling_ae: str
    retry_initial: float = 1.0
    retry_max: float = 60.0
    max_attempts: int = 3  # uncertain failures counted against one object before it is set aside
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _deferred: dict[str, int] = field(default_factory=dict)  # file name -> counted failures, in failure order
    _pending: int = 0
    _set_aside: int = 0
    _problem: str | None = None  # why the destination is backing off
    _retry_at: float = 0.0

    def __post_init__(self) -> None:
        self.thread = supervised_thread(self._loop, f"medtk-forward-{self.destination.slug}")
        self._label = str(self.destination)

    def start(self) -> None:
        self._set_aside = sum(1 for _ in self.spool.rejected_dir(self.destination.slug).glob("*.dcm"))
        self.metrics.destination_up.labels(self._label).set(0)
        self.thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def state(self) -> dict[str, Any]:
        """For /healthz: what waits, what was set aside, and why the destination is backing off."""
        activity = "retrying" if self._problem else "sending" if self._pending else "idle"
        state: dict[str, Any] = {"pending": self._pending, "set_aside": self._set_aside, "state": activity}
        if self._problem:
            state["problem"] = self._problem
            state["retry_in_seconds"] = round(max(0.0, self._retry_at - time.monotonic()), 1)
        return state

    def _loop(self) -> None:
        backoff = Backoff(self.retry_initial, self.retry_max)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                files = self._ordered(self.spool.to_send(self.destination.slug))
                self._pending = self.spool.pending_count(self.destination.slug)
                self.metrics.forward_pending.labels(self._label).set(self._pending)
                if not files:
                    self._wake.wait(5.0)
                    continue
                problem = self._round(files)
            except DestinationDown as down:
                problem = str(down)
            except Exception as error:  # socket, pynetdicom, the spool's disk: retry later, never end the thread
                problem = f"the spool's disk answered {describe_disk_fault(error)}" if is_disk_fault(error) \
                    else f"{type(error).__name__} while sending"
            if problem is None:
                backoff.reset()
                self._problem = None
                continue
            self._back_off(problem, backoff.next())

    def _ordered(self, files: list[Path]) -> list[Path]:
        """Oldest first, the objects that failed uncertainly last (in failure order); forgets vanished ones."""
        names = {path.name for path in files}
        for name in [name for name in self._deferred if name not in names]:
            del self._deferred[name]
        deferred = {path.name: path for path in files if path.name in self._deferred}
        return [p for p in files if p.name not in deferred] + [deferred[name] for name in self._deferred]

    def _round(self, files: list[Path]) -> str | None:
        """Send `files` over one association; None when it went well, else why the destination backs off."""
        with associate(self.destination, self.calling_ae) as link:
            accepted_another = False
            for path in files:
                if self._stop.is_set():
                    return None
                answer = link.send(path)
                if answer is None:
                    continue
                if answer.verdict is Verdict.DELIVERED:
                    self._delivered(path)
                    accepted_another = True
                elif answer.verdict is Verdict.TEMPORARY:
                    return answer.reason
                elif answer.verdict is Verdict.PERMANENT:
                    if not self._set_aside_one(path, answer):
                        return "results cannot be set aside: the spool's disk refused"
                elif not self._uncertain(path, answer, counted=accepted_another):
                    return answer.reason
        self.metrics.destination_up.labels(self._label).set(1)
        return None

    def _delivered(self, path: Path) -> None:
        self.spool.sent(path)
        self._deferred.pop(path.name, None)
        self.metrics.forwarded.labels(self._label, "sent").inc()

    def _uncertain(self, path: Path, answer: Answer, counted: bool) -> bool:
        """Move `path` to the back; count the failure if `counted`. False: the round should end."""
        failures = self._deferred.pop(path.name, 0) + (1 if counted else 0)
        self._deferred[path.name] = failures
        self.metrics.forwarded.labels(self._label, "retry").inc()
        if not counted:
            return False
        if failures >= self.max_attempts:
            reason = f"{answer.reason}, {failures} times while the destination accepted other objects"
            return self._set_aside_one(path, Answer(Verdict.PERMANENT, reason, "attempts"))
        return True

    def _set_aside_one(self, path: Path, answer: Answer) -> bool:
        """`path` to rejected/<destination>/ with the reason; False when the disk would not take it."""
        if not self.spool.reject(self.destination.slug, path, answer.reason):
            return False
        self._deferred.pop(path.name, None)
        self._set_aside += 1
        self.metrics.set_aside.labels(self._label, answer.kind).inc()
        self.metrics.forwarded.labels(self._label, "set_aside").inc()
        log.warning("destination %s: result %s set aside: %s", self.destination, path.stem[-12:], answer.reason)
        return True

    def _back_off(self, problem: str, delay: float) -> None:
        self._problem, self._retry_at = problem, time.monotonic() + delay
        self.metrics.errors.labels("forward").inc()
        self.metrics.destination_up.labels(self._label).set(0)
        log.warning("destination %s: %s; retrying in %.1f s", self.destination, problem, delay)
        self._stop.wait(delay)

"""What happens once an instance's fate is known: results durable (counted, logged, forwarders woken) or
the instance set aside with its reason. Shared by the workers and the result writer, so both report
an outcome the same way and neither needs the other.

A failure that is the spool disk's, not the image's (faults.py), never sets an instance aside: it is
*held* (it stays in queue/, health says why) and its worker tries it again once the disk has recovered.
Setting an instance aside that the disk will not take is held the same way. Nothing here raises.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from medtk.errors import RuntimeInputError
from medtk.serve.backoff import Backoff
from medtk.serve.faults import describe_disk_fault, is_disk_fault
from medtk.serve.health import Blockers
from medtk.serve.metrics import NodeMetrics
from medtk.serve.spool import Spool, SpoolItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Done:
    """One instance's results, built and not yet committed."""

    item: SpoolItem
    results: dict[str, bytes]  # SOP Instance UID -> Part 10 file
    admitted: float  # time.time() when the instance was acknowledged
    tag: str  # uid_tag of the source, for logs
    label: str | None  # None: the finding was withheld (assessment.py)
    probability: float | None


@dataclass
class Outcomes:
    spool: Spool
    metrics: NodeMetrics
    blockers: Blockers
    on_results: Callable[[], None] = lambda: None  # wakes the forwarders
    _held: dict[str, str] = field(default_factory=dict)  # key -> why it waits for the disk
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def committed(self, batch: list[Done]) -> None:
        """Results of `batch` are durable in the outbox and pending folders."""
        for done in batch:
            self.metrics.images.labels("dicom", "ok").inc()
            self.metrics.latency.labels("dicom").observe(time.time() - done.admitted)
            if done.label is None:
                log.info("instance %s: finding withheld", done.tag)
            else:
                log.info("instance %s: %s (p=%.3f)", done.tag, done.label, done.probability)
            self._settle(done.item)
        self.on_results()

    def failed(self, item: SpoolItem, error: Exception) -> None:
        """`item` cannot be processed: kept in failed/ with the reason (beside it, never in the log).

        A disk fault holds it instead (see the module docstring). Never raises: it runs on the workers'
        and the writer's threads, which must survive any failure.
        """
        try:
            if is_disk_fault(error):
                if item.path.exists():  # one that is gone (committed, set aside) has nothing left to hold
                    self._hold(item, f"the spool's disk answered {describe_disk_fault(error)}")  # type: ignore[arg-type]
                return
            if not self.spool.fail(item, f"{type(error).__name__}: {error}"):
                self._hold(item, "the spool's disk would not take a failed instance")
                return
            self._settle(item)
            log.warning("instance %s failed: %s", item.key[:12], loggable(error))
            self.metrics.errors.labels("process").inc()
            self.metrics.images.labels("dicom", "error").inc()
        except Exception as unexpected:
            log.error("instance %s: reporting its failure failed (%s)", item.key[:12], type(unexpected).__name__)

    def held(self, item: SpoolItem) -> bool:
        """True while `item` waits for the spool's disk to recover."""
        with self._lock:
            return item.key in self._held

    def retry_while_held(self, item: SpoolItem, attempt: Callable[[], None], backoff: Backoff,
                         stopping: threading.Event) -> None:
        """Run `attempt` (which reports here), and again after each backoff while the disk holds `item`.

        The caller's thread waits: that is the back-pressure. Stopping leaves `item` in queue/ for the
        next start.
        """
        attempt()
        while self.held(item) and item.path.exists():
            if stopping.wait(backoff.next()):
                return
            attempt()
        if not item.path.exists():
            self._settle(item)

    def _hold(self, item: SpoolItem, why: str) -> None:
        log.warning("instance %s kept in the queue until the disk recovers: %s", item.key[:12], why)
        self.metrics.errors.labels("disk").inc()
        with self._lock:
            self._held[item.key] = why
            self._block()

    def _settle(self, item: SpoolItem) -> None:
        with self._lock:
            if self._held.pop(item.key, None) is not None:
                self._block()

    def _block(self) -> None:
        """Health's view of the held instances (called with the lock held)."""
        if not self._held:
            self.blockers.clear("instances")
            return
        last = next(reversed(self._held.values()))
        self.blockers.block("instances", f"{len(self._held)} acknowledged instance(s) wait for the spool: {last}")


def loggable(error: Exception) -> str:
    """A reason safe for logs: medtk's own messages name no patient data; others only by their type."""
    if isinstance(error, RuntimeInputError):
        return str(error).splitlines()[0][:300] if str(error) else "RuntimeInputError"
    return f"{type(error).__name__} (details in the spool's failed/ folder)"

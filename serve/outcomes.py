"""What happens once an instance's fate is known: results durable (counted, logged, forwarders woken) or
the instance set aside with its reason. Shared by the workers and the result writer, so both report
an outcome the same way and neither needs the other."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from medtk.errors import RuntimeInputError
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
    label: str
    probability: float


@dataclass
class Outcomes:
    spool: Spool
    metrics: NodeMetrics
    on_results: Callable[[], None] = lambda: None  # wakes the forwarders

    def committed(self, batch: list[Done]) -> None:
        """Results of `batch` are durable in the outbox and pending folders."""
        import time

        for done in batch:
            self.metrics.images.labels("dicom", "ok").inc()
            self.metrics.latency.labels("dicom").observe(time.time() - done.admitted)
            log.info("instance %s: %s (p=%.3f)", done.tag, done.label, done.probability)
        self.on_results()

    def failed(self, item: SpoolItem, error: Exception) -> None:
        """`item` cannot be processed: kept in failed/ with the reason (beside it, never in the log)."""
        log.warning("instance %s failed: %s", item.key[:12], loggable(error))
        self.metrics.errors.labels("process").inc()
        self.metrics.images.labels("dicom", "error").inc()
        self.spool.fail(item, f"{type(error).__name__}: {error}")


def loggable(error: Exception) -> str:
    """A reason safe for logs: medtk's own messages name no patient data; others only by their type."""
    if isinstance(error, RuntimeInputError):
        return str(error).splitlines()[0][:300] if str(error) else "RuntimeInputError"
    return f"{type(error).__name__} (details in the spool's failed/ folder)"

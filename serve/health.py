"""When the node cannot make progress, and what `/healthz` says about it.

Not ready (503, with the reasons) while any of these holds:
- the node is not started, or is stopping;
- a part that cannot move has said so (`Blockers`): the writer cannot commit results, or a worker
  cannot read or set aside an instance, because of the spool's disk;
- a worker, writer or forwarder thread is no longer alive;
- work is waiting and nothing moved for longer than --stall-seconds;
- the spool's disk has less free space than --min-free-bytes (new instances are refused).

Ready (200) otherwise, with each destination's state. A destination that is down, or objects set
aside for it, are reported in the body and in metrics but do not make the node unready: it still
accepts work and keeps it. So is a model served with --allow-failed-variant (`warnings`: the operator
chose it; the body says so on every check). Reasons name conditions, errno values, threads and counts,
never patient data. A check reads only memory and one statvfs, so probes may call it often.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from medtk.serve.forwarder import Forwarder
from medtk.serve.spool import Spool
from medtk.serve.work import WorkQueue


class Blockers:
    """Conditions under which a part of the node cannot move, raised and cleared by that part."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}

    def block(self, part: str, reason: str) -> None:
        with self._lock:
            self._reasons[part] = reason

    def clear(self, part: str) -> None:
        with self._lock:
            self._reasons.pop(part, None)

    def reasons(self) -> list[str]:
        with self._lock:
            return list(self._reasons.values())


@dataclass(frozen=True)
class HealthReport:
    problems: tuple[str, ...]
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # conditions that do not stop progress, e.g. a model that failed its gate

    @property
    def ready(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """`{"status": "ready"}`, with `problems` when not ready, and `warnings` and `destinations` when there
        are any."""
        body: dict[str, Any] = {"status": "ready" if self.ready else "not ready"}
        if self.problems:
            body["problems"] = list(self.problems)
        if self.warnings:
            body["warnings"] = list(self.warnings)
        if self.destinations:
            body["destinations"] = self.destinations
        return body


@dataclass
class Health:
    blockers: Blockers
    queue: WorkQueue
    spool: Spool
    forwarders: Sequence[Forwarder]
    threads: Callable[[], Iterable[threading.Thread]]  # every thread the node needs while it runs
    stall_seconds: float
    min_free_bytes: int
    running: bool = False  # set by the node once everything started; cleared when it stops
    warnings: tuple[str, ...] = ()  # reported on every check, never a reason to be unready

    def check(self) -> HealthReport:
        if not self.running:
            return HealthReport(("the node is not running (starting or stopping)",), warnings=self.warnings)
        problems = self.blockers.reasons()
        problems += [f"thread {thread.name} has stopped" for thread in self.threads() if not thread.is_alive()]
        stalled = self.queue.stalled_for()
        if stalled > self.stall_seconds:
            problems.append(f"{self.queue.depth} image(s) waiting and nothing completed for {stalled:.0f} s "
                            f"(--stall-seconds {self.stall_seconds:g})")
        if (disk := self.disk_problem()) is not None:
            problems.append(disk)
        destinations = {str(f.destination): f.state() for f in self.forwarders}
        return HealthReport(tuple(problems), destinations, self.warnings)

    def disk_problem(self) -> str | None:
        """Why new instances are refused for want of disk (the Storage SCP answers 0xA700), or None."""
        try:
            free = self.spool.free_bytes()
        except OSError as error:
            return f"the spool cannot be examined ({type(error).__name__}): new instances are refused"
        if free < self.min_free_bytes:
            return (f"the spool's disk has {free} bytes free, less than --min-free-bytes {self.min_free_bytes}: "
                    "new instances are refused")
        return None

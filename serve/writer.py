"""The result writer: commits finished results to the spool on a thread of its own, a batch at a time.

Workers only decode, infer and build results; writing them durably (fsync of every file and folder)
would leave the interpreter idle while a worker waits for the disk. The writer takes what the workers
finished, commits everything waiting in one batch (each file fsynced, each folder fsynced once per
batch: spool.commit_many), and only then counts the images as done and wakes the forwarders.

Bounded: at most `capacity` finished images wait for it; a worker that finds it full waits (the
interpreter pauses, the work queue fills, and the Storage SCP answers 0xA700 to new instances). An
instance stays in queue/ until its results are committed, so a crash loses nothing: a restart
processes it again, with the same result UIDs.

A disk that cannot take the results (full, failing: faults.py) is waited out, never blamed on the
images: the batch stays in memory and is committed again with backoff until the disk recovers, while
health reports the condition (503) and the hand-off's bound turns it into back-pressure. Only an error
that is not the disk's sets an instance aside, found by committing that batch one image at a time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from medtk.serve.backoff import Backoff
from medtk.serve.faults import describe_disk_fault, is_disk_fault
from medtk.serve.health import Blockers
from medtk.serve.metrics import NodeMetrics
from medtk.serve.outcomes import Done, Outcomes
from medtk.serve.spool import Spool
from medtk.serve.threads import supervised_thread

log = logging.getLogger(__name__)


class ResultWriter:
    def __init__(self, spool: Spool, outcomes: Outcomes, blockers: Blockers, metrics: NodeMetrics,
                 retry: tuple[float, float] = (1.0, 60.0), capacity: int = 8, batch: int = 8) -> None:
        self.spool, self.outcomes, self.blockers, self.metrics = spool, outcomes, blockers, metrics
        self._retry, self._capacity, self._batch = retry, capacity, batch
        self._waiting: deque[Done] = deque()  # committed ones leave it only after their commit
        self._room = threading.Condition()
        self._giving_up = threading.Event()  # stopping: a failed commit is left to the next start
        self._closed = False
        self.thread = supervised_thread(self._run, "medtk-serve-writer")

    def start(self) -> None:
        self.thread.start()

    def put(self, done: Done) -> bool:
        """Queue one image's results; waits while `capacity` are already waiting. False once the writer
        has stopped: the instance stays in queue/ and the next start processes it again."""
        with self._room:
            while len(self._waiting) >= self._capacity and not self._closed:
                self._room.wait()
            if self._closed:
                return False
            self._waiting.append(done)
            self._room.notify_all()
            return True

    def give_up_on_failure(self) -> None:
        """The node is stopping: stop waiting for a disk that cannot take results (call before stopping
        the workers, so none waits on a full hand-off)."""
        self._giving_up.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is already queued (once), then stop; call after the workers stopped."""
        self._giving_up.set()
        with self._room:
            self._closed = True
            self._room.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._room:
                while not self._waiting and not self._closed:
                    self._room.wait()
                if not self._waiting:
                    return
                batch = [self._waiting[i] for i in range(min(self._batch, len(self._waiting)))]
            self._commit(batch)
            with self._room:
                for _ in batch:
                    self._waiting.popleft()
                self._room.notify_all()

    def _commit(self, batch: list[Done]) -> None:
        """Commit `batch`; if it fails for a reason other than the disk, one image at a time, so only the
        image that fails is set aside."""
        error = self._commit_waiting_out_the_disk(batch)
        if error is None:
            return
        if len(batch) == 1:
            item = batch[0].item
            self.outcomes.retry_while_held(item, lambda: self.outcomes.failed(item, error), Backoff(*self._retry),
                                           self._giving_up)
            return
        for done in batch:
            self._commit([done])

    def _commit_waiting_out_the_disk(self, batch: list[Done]) -> Exception | None:
        """Commit, retrying with backoff while the disk cannot take it; the error when it is not the disk's.

        None also when the node stops during a disk fault: the instances stay in queue/ for the next start.
        """
        backoff = Backoff(*self._retry)
        while True:
            try:
                self.spool.commit_many([(done.item, done.results) for done in batch])
            except Exception as error:
                if not is_disk_fault(error):
                    return error
                self._disk_fault(error)  # type: ignore[arg-type]
                if self._giving_up.wait(backoff.next()):
                    log.warning("stopping with %d image(s) uncommitted; they stay queued for the next start",
                                len(batch))
                    return None
                continue
            self.blockers.clear("writer")
            self._report(batch)
            return None

    def _disk_fault(self, error: OSError) -> None:
        why, images = describe_disk_fault(error), len(self._waiting)
        self.metrics.commit_retries.inc()
        self.blockers.block("writer", f"results cannot be committed: the spool's disk answered {why}; "
                                      f"{images} image(s) held in memory and retried")
        log.warning("cannot commit %d image(s) (%s); retrying with backoff", images, why)

    def _report(self, batch: list[Done]) -> None:
        try:
            self.outcomes.committed(batch)
        except Exception as error:  # metrics or a forwarder wake-up must not stop the writer
            log.error("result writer: reporting a commit failed (%s)", type(error).__name__)

"""The result writer: commits finished results to the spool on a thread of its own, a batch at a time.

Workers only decode, infer and build results; writing them durably (fsync of every file and folder)
would leave the interpreter idle while a worker waits for the disk. The writer takes what the workers
finished, commits everything waiting in one batch (each file fsynced, each folder fsynced once per
batch: spool.commit_many), and only then counts the images as done and wakes the forwarders.

Bounded: at most `capacity` finished images wait for it; a worker that finds it full waits (the
interpreter pauses, the work queue fills, and the Storage SCP answers 0xA700 to new instances). An
instance stays in queue/ until its results are committed, so a crash loses nothing: a restart
processes it again, with the same result UIDs.
"""

from __future__ import annotations

import logging
import queue
import threading

from medtk.serve.outcomes import Done, Outcomes
from medtk.serve.spool import Spool

log = logging.getLogger(__name__)


class ResultWriter:
    def __init__(self, spool: Spool, outcomes: Outcomes, capacity: int = 8, batch: int = 8) -> None:
        self.spool, self.outcomes = spool, outcomes
        self._waiting: queue.Queue[Done | None] = queue.Queue(maxsize=capacity)
        self._batch = batch
        self._thread = threading.Thread(target=self._run, name="medtk-serve-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, done: Done) -> None:
        """Queue one image's results; waits while `capacity` are already waiting."""
        self._waiting.put(done)

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything already queued, then stop (call after the workers stopped)."""
        if self._thread.is_alive():
            self._waiting.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch, stop = [first], False
            while len(batch) < self._batch:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[Done]) -> None:
        try:
            self.spool.commit_many([(done.item, done.results) for done in batch])
        except Exception:  # find the one that fails (a full disk fails them all): commit one by one
            for done in batch:
                try:
                    self.spool.commit(done.item, done.results)
                except Exception as error:
                    self.outcomes.failed(done.item, error)
                    continue
                self._report([done])
            return
        self._report(batch)

    def _report(self, batch: list[Done]) -> None:
        try:
            self.outcomes.committed(batch)
        except Exception:  # metrics or a forwarder wake-up must not stop the writer
            log.exception("result writer: reporting a commit failed")

"""A bounded work queue in front of the interpreter, drained by a fixed number of worker threads.

Capacity is reserved *before* work is accepted: the Storage SCP reserves a slot before it writes an
instance to the spool (and answers 0xA700 "out of resources" when none is free), HTTP reserves one
before it reads the image (and answers 503). Instances recovered from the spool after a restart were
already acknowledged, so they are admitted even beyond the capacity; new work waits until they drain.

The queue remembers when its work last moved (a job finished, or work arrived at an idle queue), so
health can tell a busy node from a stuck one (`stalled_for`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from medtk.serve.threads import supervised_thread

log = logging.getLogger(__name__)

Job = Callable[[], None]


class QueueFull(Exception):
    """No free slot: the caller must refuse the work (503 / 0xA700), not wait for one."""


class WorkQueue:
    def __init__(self, capacity: int, workers: int, name: str = "medtk-serve-worker") -> None:
        self.capacity = capacity
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._reserved = 0  # slots held by jobs queued, running, or about to be queued
        self._moved = time.monotonic()  # when a slot was last released, or the first one taken
        self.threads = [supervised_thread(self._work, f"{name}-{i}") for i in range(workers)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish; queued jobs stay unrun (their instances stay in the spool)."""
        self._drain_pending()
        for _ in self.threads:
            self._jobs.put(None)
        for thread in self.threads:
            thread.join(timeout)

    @property
    def depth(self) -> int:
        """Jobs admitted and not yet finished (queued + running)."""
        return self._reserved

    def stalled_for(self) -> float:
        """Seconds since work last moved while there is work; 0 when the queue is empty."""
        with self._lock:
            return time.monotonic() - self._moved if self._reserved else 0.0

    def reserve(self) -> None:
        """Hold one slot or raise `QueueFull`; pair with `submit` or `release`."""
        with self._lock:
            if self._reserved >= self.capacity:
                raise QueueFull(f"work queue full ({self.capacity} images waiting or running)")
            self._take()

    def release(self) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            self._moved = time.monotonic()

    def submit(self, job: Job) -> None:
        """Queue a job whose slot `reserve` already took."""
        self._jobs.put(job)

    def submit_recovered(self, job: Job) -> None:
        """Queue already-acknowledged work regardless of capacity (restart recovery)."""
        with self._lock:
            self._take()
        self._jobs.put(job)

    def _take(self) -> None:
        """One more slot held (the lock is held); work arriving at an idle queue starts the stall clock."""
        if self._reserved == 0:
            self._moved = time.monotonic()
        self._reserved += 1

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as error:  # a job handles its own errors; this only keeps the worker alive
                log.error("worker job failed unexpectedly (%s)", type(error).__name__)  # messages may quote headers
            finally:
                self.release()

    def _drain_pending(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self.release()

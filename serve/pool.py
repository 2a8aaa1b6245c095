"""One interpreter per worker, so the node's images run side by side instead of taking turns.

A TFLite interpreter runs one image at a time. Behind a single interpreter the workers' own CPU work
(decoding, the overlay, the SR and SC) cannot overlap the model without stealing a core from one of
its threads, which then all wait for it at every layer. With one single-threaded interpreter per
worker nothing waits, and throughput is higher (measured in benchmarks/RESULTS.md, "medtk serve").
The cost is memory: each interpreter holds its own activations and packed weights (the model file's
bytes are shared).
"""

from __future__ import annotations

import queue
from contextlib import contextmanager
from typing import Iterator

from medtk.runtime import Classifier


class ClassifierPool:
    """A fixed set of interpreters on one model; `lease` lends one to a worker for one image."""

    def __init__(self, classifier: Classifier, size: int) -> None:
        """`classifier` and `size - 1` replicas of it."""
        if size < 1:
            raise ValueError(f"a classifier pool needs at least one interpreter, not {size}")
        self.primary = classifier  # metadata, labels and threads are the same for every member
        self.size = size
        self._free: queue.SimpleQueue[Classifier] = queue.SimpleQueue()
        self._free.put(classifier)
        for _ in range(size - 1):
            self._free.put(classifier.replica())

    @contextmanager
    def lease(self) -> Iterator[Classifier]:
        """One interpreter for the caller's exclusive use; waits only when more callers than members."""
        classifier = self._free.get()
        try:
            yield classifier
        finally:
            self._free.put(classifier)

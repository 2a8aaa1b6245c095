"""The job on this machine: a bounded pool of threads, each with its own single-threaded interpreter.

Why threads: LiteRT's invoke and OpenCV's decoding release the GIL, so one process with one interpreter
per thread keeps every core busy without copying images between processes (the same design as
`medtk serve`'s pool, measured there; benchmarks/RESULTS.md "Batch inference" measures this pool
against a bare `Classifier` loop). Why one thread per BLAS: numpy's and OpenCV's BLAS pools would
otherwise spin a thread per CPU beside the workers on any product large enough to wake them (the runtime's
own CAM product no longer does: runtime/cam.py; serve/native_threads.py).

Memory is bounded: at most `2 x workers` items are in flight (read, decoding or predicted and not yet
handed back), whatever the size of the source. Rows come back in the source's order.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Iterator

from medtk.batch.items import Item
from medtk.batch.rows import predict_row
from medtk.schema.batch import ModelInfo

IN_FLIGHT_PER_WORKER = 2


def local_rows(classifier, items: Iterable[Item], model: ModelInfo, workers: int) -> Iterator[dict[str, Any]]:
    """Rows of `items`, predicted by `workers` threads, each on its own replica of `classifier`.

    BLAS runs on one thread while the rows are produced, and as before afterwards (the caller's process)."""
    with single_threaded_blas():
        yield from _rows(classifier, items, model, workers)


def _rows(classifier, items: Iterable[Item], model: ModelInfo, workers: int) -> Iterator[dict[str, Any]]:
    local = threading.local()

    def predict(item: Item) -> dict[str, Any]:
        mine = getattr(local, "classifier", None)
        if mine is None:
            mine = local.classifier = classifier.replica(num_threads=1)
        return predict_row(mine, item, model)

    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medtk-batch") as pool:
        for item in items:
            pending.append(pool.submit(predict, item))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def single_threaded_blas():
    """Every BLAS pool (numpy's, OpenCV's) on one thread until the returned limiter's `with` block ends or it
    is dropped (threadpoolctl, in the `medtk[scale]` extra); a Ray actor keeps it for its life."""
    import cv2  # noqa: F401  (loads OpenCV's BLAS, so the limit reaches it too)
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")

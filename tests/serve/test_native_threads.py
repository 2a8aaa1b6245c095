"""serve/native_threads.py: a started node's BLAS pools (numpy's and OpenCV's OpenBLAS) and OpenCV's own
pool run on one thread."""

from __future__ import annotations

import cv2
from threadpoolctl import threadpool_info, threadpool_limits


def test_a_node_runs_every_blas_library_and_opencv_on_one_thread(start_node):
    threads = cv2.getNumThreads()
    try:
        with threadpool_limits(limits=2, user_api="blas"):  # as a library left them; restored on leaving
            cv2.setNumThreads(2)
            start_node()
            blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
            assert any("numpy" in pool["filepath"] for pool in blas)
            assert {pool["filepath"]: pool["num_threads"] for pool in blas} == {pool["filepath"]: 1 for pool in blas}
            assert cv2.getNumThreads() == 1  # what OpenCV reports once its threading is off
    finally:
        cv2.setNumThreads(threads)

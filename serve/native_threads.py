"""The node's CPUs are `--workers` x `--threads`: the thread pools its native libraries bring get one thread.

numpy and OpenCV each load an OpenBLAS that starts a thread per CPU and splits a large enough product
over them (the runtime's CAM upsampling is one: a 7 x 7 map onto a 512 x 512 image). Between calls
those threads spin-wait for more work; beside two busy 1-thread workers on two cores they took ~20 ms
of a core per image (perf: `blas_thread_server`), and one such product took 3-9 ms instead of 0.2 under
load (benchmarks/RESULTS.md, "medtk serve"). The runtime now computes that product in blocks small enough
for OpenBLAS to keep on the calling thread (runtime/cam.py); this limit stays as the guard for every other
product in the node's process. OpenCV's own pool (`parallel_for`, used by its resize and colour
conversions of a 512 x 512 image) is the same story on a smaller scale: ~0.6 ms of CPU per image in a
thread of its own, plus the wake-ups, for work the worker's core would do anyway. The node owns its
process, so it sets both process-wide.
"""

from __future__ import annotations


def single_threaded_libraries() -> None:
    """Every BLAS library loaded so far, and OpenCV, run on the calling thread (call after the imports
    that load them)."""
    import cv2
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    cv2.setNumThreads(0)  # 0: no threading optimisations, everything on the calling thread (OpenCV docs)

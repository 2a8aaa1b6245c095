"""Measure one model in this (fresh) process and print the result as JSON on stdout.

`medtk bench` starts one worker per model, locally or on a device over SSH, so the peak RSS of one
model is not polluted by the models measured before it and the device needs only `pip install medtk`:

    python -m medtk.runtime.bench_worker MODEL.tflite --threads 4 --runs 50 --warmup 5 [--delegate cpu]

(that module name is a stable shim for this one; see `protocol.py`).

A `.onnx` model runs through ONNX Runtime (the `medtk[onnx]` extra); its execution provider is named in
`backend`, and its MACs are not counted (0), so no device estimate is scaled from it.

Two paths are timed: the bare interpreter call (set_tensor + invoke + get_tensor of probs and cam) and
the end-to-end `Classifier.predict` on a PNG file (decode + preprocess + invoke + CAM at image size).
"""

from __future__ import annotations

import argparse
import platform
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from medtk.devices.detect import detect_device
from medtk.runtime.bench.measurement import Machine, ModelBench
from medtk.runtime.bench.protocol import WORKER_MODULE, error_line, result_line
from medtk.runtime.bench.stats import summarize
from medtk.runtime.flatbuffer import count_macs

# A synthetic radiograph-sized image for the end-to-end path when the user gives none.
DEFAULT_IMAGE_SIZE = 512


def measure(model: Path, threads: int, runs: int, warmup: int, delegate: str = "cpu", image: Path | None = None) -> ModelBench:
    """Time the bare interpreter call and the end-to-end `Classifier.predict` of `model` in this process."""
    from medtk.runtime.classifier import Classifier, engine_for, verify_model
    from medtk.runtime.container import TFLITE, model_format
    from medtk.runtime.signature import resolve_io
    from medtk.runtime.versions import runtime_versions

    baseline = _rss_mb()
    content = model.read_bytes()
    kind = model_format(content, str(model))
    verify_model(content, str(model))  # the bare interpreter below must never see a file that fails its seal
    backend, make_interpreter = engine_for(kind)  # LiteRT for .tflite, ONNX Runtime for .onnx
    start = time.perf_counter()
    interpreter, placement = make_interpreter(backend, content, str(model), threads, delegate)
    init_ms = _since(start)
    io = resolve_io(interpreter, str(model))
    pixels = np.random.default_rng(0).integers(0, 256, io.pixels.shape).astype(io.pixels.dtype)

    def bare() -> None:
        interpreter.set_tensor(io.pixels.index, pixels)
        interpreter.invoke()
        interpreter.get_tensor(io.probs.index)
        interpreter.get_tensor(io.cam.index)

    first_ms, warm, steady = _time_phases(bare, runs, warmup)
    del interpreter

    classifier = Classifier(model, num_threads=threads, delegate=delegate)
    with tempfile.TemporaryDirectory(prefix="medtk-bench-") as folder:
        png = image if image is not None else _synthetic_png(Path(folder))
        e2e_first, _, e2e = _time_phases(lambda: classifier.predict(png), runs, warmup)
    return ModelBench(
        model=model.name,
        size_bytes=len(content),
        macs=count_macs(content) if kind == TFLITE else 0,  # counted from the flatbuffer; 0: not counted (.onnx)
        variant=classifier.metadata.variant,
        # LiteRT: its version with numpy, Python and the CPU (compared across machines); ONNX Runtime: its provider
        backend=str(runtime_versions()) if kind == TFLITE else f"{backend} ({placement.provider})",
        delegate=placement.delegate,
        delegate_fallback=placement.fallback,
        threads=placement.num_threads,
        init_ms=init_ms,
        first_inference_ms=first_ms,
        warmup_runs=warmup,
        warmup_mean_ms=float(np.mean(warm)) if warm else 0.0,
        bare=summarize(steady),
        end_to_end_first_ms=e2e_first,
        end_to_end=summarize(e2e),
        end_to_end_image=str(image) if image is not None else f"synthetic {DEFAULT_IMAGE_SIZE}x{DEFAULT_IMAGE_SIZE} PNG",
        rss_baseline_mb=baseline,
        rss_peak_mb=_rss_mb(),
        machine=machine_info(),
    )


def machine_info() -> Machine:
    detection = detect_device()
    return Machine(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        machine=platform.machine(),
        python=platform.python_version(),
        detected_profile=detection.profile,
        detected_from=detection.evidence,
    )


def _time_phases(call: Callable[[], object], runs: int, warmup: int) -> tuple[float, list[float], list[float]]:
    """First call, then `warmup` discarded calls, then `runs` timed calls (ms each)."""
    timed = []
    for _ in range(1 + warmup + runs):
        start = time.perf_counter()
        call()
        timed.append(_since(start))
    return timed[0], timed[1 : 1 + warmup], timed[1 + warmup :]


def _synthetic_png(folder: Path) -> Path:
    import cv2

    ramp = np.linspace(0, 255, DEFAULT_IMAGE_SIZE, dtype=np.float32)
    noise = np.random.default_rng(1).normal(0, 12, (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE))
    image = np.clip(ramp[None, :] * 0.6 + ramp[:, None] * 0.4 + noise, 0, 255).astype(np.uint8)
    path = folder / "bench_input.png"
    cv2.imwrite(str(path), image)
    return path


def _since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _rss_mb() -> float:
    """Peak RSS of this process. Linux: VmHWM, which exec resets (ru_maxrss carries over from the
    parent across fork + exec, so a worker started by a large TensorFlow process would report its peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def main(argv: list[str] | None = None) -> int:
    """The worker's command line: measure, then print the result (or the error) as one JSON line."""
    parser = argparse.ArgumentParser(prog=f"python -m {WORKER_MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--delegate", default="cpu")
    parser.add_argument("--image", type=Path, default=None)
    args = parser.parse_args(argv)
    from medtk.errors import MedtkError

    try:
        result = measure(args.model, args.threads, args.runs, args.warmup, args.delegate, args.image)
    except MedtkError as error:
        print(error_line(error))
        return error.exit_code
    print(result_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `Classifier.predict` costs over a bare interpreter loop, and int8 vs float32 latency.

    /work/venv/bin/python benchmarks/runtime_overhead.py [--rounds 15] [--calls 20] [--threads 2]

Model: ResNet50, 224x224x1, 2 classes, weights none (latency does not depend on weight values),
converted to float32 and int8 (50 random calibration images), cached under benchmarks/.cache/.
Per round, `calls` pairs, call by call with alternating order: `Classifier.predict(image)` on an
in-memory 224x224 uint8 image (validate + prepare + set/invoke/get + probabilities + CAM at image
size) and the bare loop an integrator would write (set_tensor / invoke / get_tensor of probs and cam)
on the same interpreter. Ratio per round = median predict / median bare; the report is the median of
the per-round ratios, so load drift from other jobs on a shared machine largely cancels.
Writes the section "## Runtime overhead (issue 4)" of benchmarks/RESULTS.md (other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "RESULTS.md"
HEADING = "## Runtime overhead (issue 4)"
LABELS = ("normal", "pneumonia")
SIZE = 224


def build_models() -> dict[str, Path]:
    paths = {variant: CACHE / f"overhead_resnet50_{SIZE}_{variant}.tflite" for variant in ("float32", "int8")}
    if all(path.is_file() for path in paths.values()):
        return paths
    from medtk.compress.convert import convert
    from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata
    from medtk.train.cam_geometry import cam_geometry
    from medtk.train.model import ModelSpec, build_classifier
    from medtk.variants import get_variant

    model = build_classifier(ModelSpec(arch="resnet50", input_size=SIZE, channels=1, weights="none"))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (SIZE, SIZE, 1), dtype=np.uint8) for _ in range(50)]
    CACHE.mkdir(parents=True, exist_ok=True)
    for variant, path in paths.items():
        metadata = ModelMetadata(
            labels=LABELS, input=ModelInput(size=SIZE, channels=1, dtype=get_variant(variant).input_dtype), variant=variant,
            cam_geometry=cam_geometry(model),
        )
        path.write_bytes(embed_metadata(convert(model, variant, calibration), metadata))
    return paths


def bare_loop(classifier):
    """The loop an integrator writes by hand, on the classifier's own interpreter (same arena and
    thread pool), so the ratio isolates what `predict` adds: indices looked up once, no checks."""
    interpreter = classifier._interpreter
    pixels = interpreter.get_input_details()[0]
    outputs = interpreter.get_signature_runner().get_output_details()
    probs, cam = outputs["probs"]["index"], outputs["cam"]["index"]
    tensor = np.zeros(pixels["shape"], pixels["dtype"])

    def call(image: np.ndarray) -> None:
        tensor[0, :, :, 0] = image
        interpreter.set_tensor(pixels["index"], tensor)
        interpreter.invoke()
        interpreter.get_tensor(probs)
        interpreter.get_tensor(cam)

    return call


def timed(function, argument) -> float:
    start = time.perf_counter()
    function(argument)
    return time.perf_counter() - start


def one_round(classifier, bare, image: np.ndarray, calls: int) -> tuple[list[float], list[float]]:
    """`calls` pairs, call by call, alternating who goes first."""
    predict_times, bare_times = [], []
    for call in range(calls):
        if call % 2:
            bare_times.append(timed(bare, image))
        predict_times.append(timed(classifier.predict, image))
        if not call % 2:
            bare_times.append(timed(bare, image))
    return predict_times, bare_times


def measure(models: dict[str, Path], threads: int, rounds: int, calls: int) -> dict[str, dict]:
    """Rounds alternate between the models too, so int8 and float32 see the same background load."""
    from medtk.runtime import Classifier

    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    runners = {}
    for variant, model in models.items():
        classifier = Classifier(model, num_threads=threads, delegate="cpu")
        bare = bare_loop(classifier)
        for _ in range(3):  # warm-up: first invokes pack weights and fault pages in
            classifier.predict(image)
            bare(image)
        runners[variant] = (classifier, bare)
    samples = {variant: {"ratios": [], "added": [], "predict": [], "bare": []} for variant in models}
    for index in range(rounds):
        order = list(runners) if index % 2 == 0 else list(runners)[::-1]
        for variant in order:
            predict_times, bare_times = one_round(*runners[variant], image, calls)
            sample = samples[variant]
            sample["ratios"].append(statistics.median(predict_times) / statistics.median(bare_times))
            sample["added"].append(statistics.median(predict_times) - statistics.median(bare_times))
            sample["predict"] += predict_times
            sample["bare"] += bare_times
    return {
        variant: {
            "backend": str(runners[variant][0].backend),
            "ratio": statistics.median(sample["ratios"]),
            "ratio_min": min(sample["ratios"]),
            "ratio_max": max(sample["ratios"]),
            "added_ms": statistics.median(sample["added"]) * 1e3,
            "predict_ms": statistics.median(sample["predict"]) * 1e3,
            "bare_ms": statistics.median(sample["bare"]) * 1e3,
            "bare_p90_ms": float(np.percentile(sample["bare"], 90)) * 1e3,
        }
        for variant, sample in samples.items()
    }


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def section(command: str, results: dict[str, dict], args, load_before: str, load_after: str) -> str:
    int8, float32 = results["int8"], results["float32"]
    rows = "\n".join(
        f"| {variant} | {r['bare_ms']:.2f} | {r['bare_p90_ms']:.2f} | {r['predict_ms']:.2f} | "
        f"{r['added_ms']:.3f} | {r['ratio']:.3f}x | {r['ratio_min']:.3f}-{r['ratio_max']:.3f} |"
        for variant, r in results.items()
    )
    speedup = float32["bare_ms"] / int8["bare_ms"]
    verdict = "met" if int8["ratio"] <= 1.05 and float32["ratio"] <= 1.05 else "NOT met"
    return f"""{HEADING}

`Classifier.predict` on an in-memory {SIZE}x{SIZE} uint8 image (checks, prepare, invoke, probabilities,
CAM upsampled to the image) vs a bare set_tensor/invoke/get_tensor loop (probs + cam) on the same
interpreter, call by call in alternating order. ResNet50 {SIZE}x{SIZE}x1, 2 classes, weights none, int8
calibrated on 50 random images; {int8['backend']}, CPU (XNNPACK), {args.threads} threads; {args.rounds} rounds of
{args.calls} call pairs, rounds alternating between the two models (same background load for both);
overhead = median over rounds of (median predict / median bare).
Host: {platform.machine()} {os.cpu_count()} vCPUs shared with other jobs; load average (1/5/15 min)
{load_before} before, {load_after} after.

Command:

    {command}

| model | bare p50 ms | bare p90 ms | predict p50 ms | added ms | overhead (median ratio) | per-round range |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{rows}

Overhead target <= 1.05x: {verdict}. "added ms" (median over rounds of predict p50 - bare p50) is the
fixed cost of predict ({100 * int8['added_ms'] / int8['bare_ms']:.1f}% of the int8 latency here); it does not shrink with the
model, so on a faster, idle device the ratio grows: check it there with the same command.
int8 vs float32 (bare p50): {speedup:.2f}x faster (target about 3x).
"""


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it); other sections stay as they are."""
    from medtk.io import atomic_write_text

    current = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    start = current.find(HEADING)
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + len(HEADING))
        updated = current[:start] + text + (current[end:] if end >= 0 else "")
    atomic_write_text(RESULTS, updated)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    command = "/work/venv/bin/python benchmarks/runtime_overhead.py " + " ".join(sys.argv[1:])
    models = build_models()
    load_before = load_average()
    results = measure(models, args.threads, args.rounds, args.calls)
    text = section(command.strip(), results, args, load_before, load_average())
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ONNX Runtime vs LiteRT on this host (issue 23): ResNet50 224x224x1, float32 and int8, side by side.

    nice -n 5 .venv/bin/python benchmarks/onnx_vs_litert.py [--rounds 5] [--threads 2] [--runs 30]

Builds four files once under benchmarks/.cache/ from one Keras model (weights none: latency does not
depend on the weight values): float32 and int8 `.tflite` (medtk's converters) and float32 and int8 QDQ
`.onnx` (medtk's tf2onnx export and ONNX Runtime static quantization, 16 random calibration images).
Each round runs the real `medtk bench` once over all four (each model in its own worker process), in
alternating order (forward, then reversed), so load that drifts during a round hits both engines. Prints
per model the median over rounds of the bare-invoke p50 with the smallest and largest round, and per
precision the ONNX Runtime / LiteRT ratio within each round, median [min, max]. CPU execution provider
only: there is no NVIDIA GPU here, so this says nothing about TensorRT.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
LABELS = ("normal", "pneumonia")
NAMES = ("float32", "int8", "onnx_float32", "onnx_int8")
PAIRS = (("float32", "onnx_float32"), ("int8", "onnx_int8"))


def build_models() -> dict[str, Path]:
    paths = {name: CACHE / f"resnet50_224_{name}.{'onnx' if name.startswith('onnx') else 'tflite'}" for name in NAMES}
    if all(path.is_file() for path in paths.values()):
        return paths
    from medtk.compress.convert import convert
    from medtk.compress.onnx_export import quantize_qdq, to_onnx
    from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata
    from medtk.train.cam_geometry import cam_geometry
    from medtk.train.model import ModelSpec, build_classifier
    from medtk.variants import get_variant

    model = build_classifier(ModelSpec(arch="resnet50", input_size=224, channels=1, weights="none"))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (224, 224, 1)).astype(np.uint8) for _ in range(16)]
    onnx_float = to_onnx(model)
    files = {"float32": convert(model, "float32"), "int8": convert(model, "int8", calibration),
             "onnx_float32": onnx_float, "onnx_int8": quantize_qdq(onnx_float, calibration)}
    CACHE.mkdir(parents=True, exist_ok=True)
    geometry = cam_geometry(model)
    for name, data in files.items():
        metadata = ModelMetadata(labels=LABELS, input=ModelInput(size=224, channels=1,
                                                                 dtype=get_variant(name).input_dtype),
                                 variant=name, cam_geometry=geometry)
        paths[name].write_bytes(embed_metadata(data, metadata))
    return paths


def bench_round(models: list[Path], threads: int, runs: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.json"
        command = [sys.executable, "-m", "medtk", "-q", "bench", *map(str, models), "--threads", str(threads),
                   "--runs", str(runs), "--warmup", "5", "--json", str(out)]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    return {result["variant"]: result for result in report["results"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    paths = build_models()
    order = [paths[name] for name in NAMES]
    rounds = [bench_round(order if i % 2 == 0 else order[::-1], args.threads, args.runs) for i in range(args.rounds)]
    first = rounds[0]
    print(f"\n{args.rounds} rounds, {args.threads} threads, {args.runs} timed runs after 5 warm-up, bare invoke p50 (ms)")
    print("| model | engine | size MB | p50 median | p50 min | p50 max | end-to-end p50 median |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in NAMES:
        p50 = [r[name]["bare"]["p50_ms"] for r in rounds]
        e2e = [r[name]["end_to_end"]["p50_ms"] for r in rounds]
        print(f"| {name} | {first[name]['backend']} | {first[name]['size_bytes'] / 1e6:.2f} | "
              f"{statistics.median(p50):.2f} | {min(p50):.2f} | {max(p50):.2f} | {statistics.median(e2e):.2f} |")
    print("\n| precision | ONNX Runtime / LiteRT p50, same round: median [min, max] |")
    print("| --- | --- |")
    for litert, ort in PAIRS:
        ratios = [r[ort]["bare"]["p50_ms"] / r[litert]["bare"]["p50_ms"] for r in rounds]
        print(f"| {litert} | {statistics.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

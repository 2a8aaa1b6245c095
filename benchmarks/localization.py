"""Localisation of explanations and the cost of output stride 16 (issue 13).

    .venv/bin/python benchmarks/localization.py train      # the demo's pipeline at output stride 32 and 16
    .venv/bin/python benchmarks/localization.py explain    # re-score: medtk explain RUN --localization
    .venv/bin/python benchmarks/localization.py latency --repeats 3   # ResNet50 224, medtk bench, 2 threads
    .venv/bin/python benchmarks/localization.py table      # the markdown tables for RESULTS.md

`train` runs `medtk demo`'s pipeline (`medtk.pipeline.DEMO`: train, eval, compress --int8, bench,
explain --localization, report) once per output stride, changing nothing else. Runs and models live
under benchmarks/.cache/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
STRIDES = (32, 16)


def run_dir(stride: int) -> Path:
    return CACHE / f"localization-demo-os{stride}"


def _medtk(*args: str) -> int:
    command = [sys.executable, "-m", "medtk", *args]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command)


def train(strides) -> None:
    from medtk.pipeline import DEMO, run_pipeline

    for stride in strides:
        started = time.perf_counter()
        run_pipeline(replace(DEMO, output_stride=stride), run_dir(stride), force=True, echo=print)
        print(f"demo pipeline at output stride {stride} in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


def explain(strides) -> None:
    for stride in strides:
        started = time.perf_counter()
        _medtk("explain", str(run_dir(stride)), "--localization", "--threads", "2")
        print(f"localisation of {run_dir(stride).name} in {time.perf_counter() - started:.0f} s", flush=True)


def build_latency_models() -> list[Path]:
    from medtk.compress.convert import convert
    from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata
    from medtk.train.cam_geometry import cam_geometry
    from medtk.train.model import ModelSpec, build_classifier
    from medtk.variants import get_variant

    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (224, 224, 1)).astype(np.uint8) for _ in range(16)]
    paths = []
    for stride in STRIDES:
        model = None
        for variant in ("float32", "int8"):
            path = CACHE / f"resnet50_224_os{stride}_{variant}.tflite"
            paths.append(path)
            if path.is_file():
                continue
            if model is None:
                model = build_classifier(ModelSpec(arch="resnet50", input_size=224, channels=1, weights="none",
                                                   output_stride=stride))
            metadata = ModelMetadata(labels=("normal", "lesion"), variant=variant, cam_geometry=cam_geometry(model),
                                     input=ModelInput(size=224, channels=1, dtype=get_variant(variant).input_dtype))
            CACHE.mkdir(parents=True, exist_ok=True)
            path.write_bytes(embed_metadata(convert(model, variant, calibration), metadata))
    return paths


def latency(repeats: int) -> None:
    models = build_latency_models()
    for repeat in range(repeats):
        order = models if repeat % 2 == 0 else models[::-1]  # alternate so drifting load hits both
        _medtk("bench", *map(str, order), "--threads", "2", "--runs", "50", "--warmup", "5",
               "--json", str(CACHE / f"localization-latency-{repeat}.json"))


def table() -> None:
    print("| run | method | grid | images | pointing game (chance) | energy (chance) | IoU (chance) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for stride in STRIDES:
        path = run_dir(stride) / "localization.json"
        if not path.is_file():
            continue
        report = json.loads(path.read_text())
        for entry in report["scores"]:
            chance = entry["chance"]
            print(f"| os{stride} | {entry['name']} | {entry['grid'][0]}x{entry['grid'][1]} | {entry['images']} | "
                  f"{entry['pointing_game']:.3f} ({chance['pointing_game']:.3f}) | {entry['energy']:.3f} "
                  f"({chance['energy']:.3f}) | {entry['iou']:.3f} ({chance['iou']:.3f}) |")
    print()
    for stride in STRIDES:
        metrics = run_dir(stride) / "metrics.json"
        compress = run_dir(stride) / "compress.json"
        if metrics.is_file():
            test = json.loads(metrics.read_text())["test"]
            print(f"os{stride}: Keras test AUC {test['auc']:.4f} accuracy {test['accuracy']:.4f}")
        if compress.is_file():
            for entry in json.loads(compress.read_text())["variants"]:
                print(f"os{stride}: {entry['name']} test AUC {entry['test']['auc']:.4f} accuracy {entry['test']['accuracy']:.4f}")
    print()
    rows: dict[str, list[float]] = {}
    for path in sorted(CACHE.glob("localization-latency-*.json")):
        for result in json.loads(path.read_text())["results"]:
            rows.setdefault(Path(result["model"]).name, []).append(result["bare"]["p50_ms"])
    print("| model | bare p50 ms per repeat | median |")
    print("| --- | --- | ---: |")
    for name, values in rows.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {float(np.median(values)):.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("train", "explain", "latency", "table"))
    parser.add_argument("--stride", type=int, action="append", help="only this output stride (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    strides = tuple(args.stride or STRIDES)
    if args.step == "train":
        train(strides)
    elif args.step == "explain":
        explain(strides)
    elif args.step == "latency":
        latency(args.repeats)
    else:
        table()
    return 0


if __name__ == "__main__":
    sys.exit(main())

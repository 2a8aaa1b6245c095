"""Latency on this host: ResNet50 224x224x1, int8 vs float32, measured with `medtk bench --threads 2`.

    /work/venv/bin/python benchmarks/latency.py

Builds the models once (weights none: latency does not depend on the weight values) under
benchmarks/.cache/, then runs the real CLI so the numbers are exactly what a user would see.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
LABELS = ("normal", "pneumonia")


def build_models() -> list[Path]:
    paths = [CACHE / "resnet50_224_float32.tflite", CACHE / "resnet50_224_int8.tflite"]
    if all(path.is_file() for path in paths):
        return paths
    from medtk.compress.convert import convert
    from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata
    from medtk.train.cam_geometry import cam_geometry
    from medtk.train.model import ModelSpec, build_classifier
    from medtk.variants import get_variant

    model = build_classifier(ModelSpec(arch="resnet50", input_size=224, channels=1, weights="none"))
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (224, 224, 1)).astype(np.uint8) for _ in range(16)]
    CACHE.mkdir(parents=True, exist_ok=True)
    for path, variant in zip(paths, ("float32", "int8")):
        metadata = ModelMetadata(labels=LABELS, input=ModelInput(size=224, channels=1, dtype=get_variant(variant).input_dtype),
                                 variant=variant, cam_geometry=cam_geometry(model))
        path.write_bytes(embed_metadata(convert(model, variant, calibration), metadata))
    return paths


def main() -> int:
    models = build_models()
    command = [sys.executable, "-m", "medtk", "bench", *map(str, models), "--threads", "2", "--runs", "50",
               "--warmup", "5", "--json", str(CACHE / "latency.json")]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())

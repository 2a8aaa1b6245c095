"""Small real `.tflite` files for the bench tests: MobileNetV2 at 32x32, float32 and int8, with metadata.

Built once per test session (TensorFlow is fine in tests; the runtime under test never imports it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LABELS = ("normal", "pneumonia")


def build_bench_models(folder: Path) -> dict[str, Path]:
    """Write tiny_float32.tflite and tiny_int8.tflite into `folder` (reused if already there)."""
    paths = {variant: folder / f"tiny_{variant}.tflite" for variant in ("float32", "int8")}
    if all(path.is_file() for path in paths.values()):
        return paths
    from medtk.compress.convert import convert
    from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata
    from medtk.train.cam_geometry import cam_geometry
    from medtk.train.model import ModelSpec, build_classifier
    from medtk.variants import get_variant

    spec = ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=len(LABELS))
    model = build_classifier(spec)
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (32, 32, 1)).astype(np.uint8) for _ in range(8)]
    folder.mkdir(parents=True, exist_ok=True)
    for variant, path in paths.items():
        tflite = convert(model, variant, calibration)
        metadata = ModelMetadata(
            labels=LABELS,
            input=ModelInput(size=32, channels=1, dtype=get_variant(variant).input_dtype),
            variant=variant,
            cam_geometry=cam_geometry(model),
        )
        path.write_bytes(embed_metadata(tflite, metadata))
    return paths

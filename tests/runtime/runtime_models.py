"""Real small TFLite models for the runtime and `medtk predict` tests, built with the real toolchain.

MobileNetV2 at 64x64 (a 2x2 CAM, so maps have a location) with its BatchNorm statistics set from one
batch of random images and a random head bias: untrained He-initialised weights without that give
activations of 1e-12 and probabilities of exactly 0.5, which would make every check vacuous.
A plain module (not a conftest) so tests/cli can load it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.runtime.imaging import INTERPOLATION_RULE, PREPROCESSING_NOTE
from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata, weights_sha256

SIZE = 64
GRAY_LABELS = ("normal", "pneumonia")
RGB_LABELS = ("benign", "malignant", "normal")
MODEL_NAMES = ("float32", "int8", "rgb", "bare", "tampered")


@dataclass(frozen=True)
class RuntimeModels:
    float32: Path  # gray, 2 classes, float32 input
    int8: Path  # the same weights, full-integer, uint8 input
    rgb: Path  # 3 channels, 3 classes, float32
    bare: Path  # float32 without medtk metadata
    tampered: Path  # float32 whose weights changed after the metadata was embedded


def _calibrated_classifier(channels: int, num_classes: int, seed: int):
    from medtk.train.model import ModelSpec, build_classifier
    from medtk.train.tfenv import keras

    k = keras()
    rng = np.random.default_rng(seed)
    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=SIZE, channels=channels, num_classes=num_classes))
    batch = rng.integers(0, 256, (16, SIZE, SIZE, channels)).astype(np.float32)
    batchnorms = [layer for layer in model.layers if isinstance(layer, k.layers.BatchNormalization)]
    for layer in batchnorms:
        layer.momentum = 0.0  # one training-mode pass sets the moving statistics to this batch's
    model(batch, training=True)
    cam = model.get_layer("cam")
    kernel, bias = cam.get_weights()
    cam.set_weights([kernel, rng.normal(0.0, 0.5, bias.shape).astype(np.float32)])
    return model


def _metadata(labels: tuple[str, ...], channels: int, variant: str) -> ModelMetadata:
    return ModelMetadata(
        labels=labels,
        input=ModelInput(
            size=SIZE,
            channels=channels,
            dtype="uint8" if variant == "int8" else "float32",
            interpolation=INTERPOLATION_RULE,
            preprocessing=PREPROCESSING_NOTE,
        ),
        variant=variant,
        model_version="test",
        intended_use="tests only",
    )


def _tamper(model: bytes) -> bytes:
    """Flip one byte inside the largest weight buffer (the metadata keeps the old sha256)."""
    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    largest = max((root.Buffers(i).DataAsNumpy() for i in range(root.BuffersLength()) if root.Buffers(i).DataLength()), key=len)
    data = largest.tobytes()
    start = model.find(data[:256])
    if start < 0:
        raise RuntimeError("cannot locate the weight buffer to tamper with")
    offset = start + len(data) // 2
    changed = bytearray(model)
    changed[offset] ^= 0xFF
    return bytes(changed)


def build_runtime_models(folder: Path, names: tuple[str, ...] = MODEL_NAMES) -> dict[str, Path]:
    """Write `<name>.tflite` for each of `names` into `folder`; returns their paths by name."""
    from medtk.compress.convert import convert

    rng = np.random.default_rng(7)
    gray = _calibrated_classifier(channels=1, num_classes=2, seed=1)
    float_bytes = convert(gray, "float32")
    files = {"float32": embed_metadata(float_bytes, _metadata(GRAY_LABELS, 1, "float32")), "bare": float_bytes}
    files["tampered"] = _tamper(files["float32"])
    if "int8" in names:
        calibration = [rng.integers(0, 256, (SIZE, SIZE, 1), dtype=np.uint8) for _ in range(8)]
        files["int8"] = embed_metadata(convert(gray, "int8", calibration), _metadata(GRAY_LABELS, 1, "int8"))
    if "rgb" in names:
        rgb = _calibrated_classifier(channels=3, num_classes=3, seed=2)
        files["rgb"] = embed_metadata(convert(rgb, "float32"), _metadata(RGB_LABELS, 3, "float32"))
    paths = {}
    for name in names:
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(files[name])
    return paths

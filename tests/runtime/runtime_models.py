"""Real small TFLite models for the runtime and `medtk predict` tests, built with the real toolchain.

MobileNetV2 at 64x64 (a 2x2 CAM, so maps have a location). Untrained He-initialised weights give
activations of 1e-12 and probabilities of exactly 0.5, which would make every check vacuous, so the
BatchNorm statistics are first set from one batch of synthetic images, and the gray model is then
trained for a few epochs on a toy task ("pneumonia" = the top half is brighter): a real classifier
with real margins, so int8 vs float32 agreement means something. A plain module (not a conftest) so
tests/cli can load it too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medtk.runtime.imaging import INTERPOLATION_RULE, PREPROCESSING_NOTE
from medtk.runtime.metadata import ModelInput, ModelMetadata, embed_metadata

SIZE = 64
GRAY_LABELS = ("normal", "pneumonia")
RGB_LABELS = ("benign", "malignant", "normal")
MODEL_NAMES = ("float32", "int8", "rgb", "bare", "tampered")
# int8 ranges come from the calibration images alone (compress/convert.py): 16 synthetic images left the
# gradient test picture 0.21 off float32 in probability; 64 keep every confident test image within 0.05.
CALIBRATION_IMAGES = 64


@dataclass(frozen=True)
class RuntimeModels:
    float32: Path  # gray, 2 classes, float32 input
    int8: Path  # the same weights, full-integer, uint8 input
    rgb: Path  # 3 channels, 3 classes, float32
    bare: Path  # float32 without medtk metadata
    tampered: Path  # float32 whose weights changed after the metadata was embedded


def synthetic_images(rng: np.random.Generator, count: int, size: int = SIZE, channels: int = 1) -> np.ndarray:
    """uint8 (count, size, size, channels): a ramp at a random angle, a disc, some noise, full range."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    for _ in range(count):
        angle = rng.uniform(0.0, 2 * np.pi)
        values = rng.uniform(0.2, 1.0) * (np.cos(angle) * x + np.sin(angle) * y)
        cy, cx, radius = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
        values = values + rng.uniform(-0.6, 0.6) * (((y - cy) ** 2 + (x - cx) ** 2) < radius**2)
        values = values + rng.normal(0.0, rng.uniform(0.0, 0.2), values.shape)
        values = (values - values.min()) / (values.max() - values.min())
        images.append(np.repeat(np.round(values * 255).astype(np.uint8)[:, :, None], channels, axis=2))
    return np.stack(images)


def toy_labels(images: np.ndarray) -> np.ndarray:
    """1 ("pneumonia") when the top half is brighter than the bottom half."""
    half = images.shape[1] // 2
    return (images[:, :half].mean(axis=(1, 2, 3)) > images[:, half:].mean(axis=(1, 2, 3))).astype(np.int32)


def _set_batchnorm_statistics(model, images: np.ndarray) -> None:
    """Make every BatchNorm's moving statistics exactly this batch's (one training-mode pass)."""
    from medtk.train.tfenv import keras

    batchnorms = [layer for layer in model.layers if isinstance(layer, keras().layers.BatchNormalization)]
    momenta = [layer.momentum for layer in batchnorms]
    for layer in batchnorms:
        layer.momentum = 0.0
    model(images.astype(np.float32), training=True)
    for layer, momentum in zip(batchnorms, momenta):
        layer.momentum = momentum


def _classifier(channels: int, num_classes: int, seed: int, train_epochs: int = 0):
    from medtk.train.model import ModelSpec, build_classifier, training_view
    from medtk.train.tfenv import keras

    k = keras()
    k.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=SIZE, channels=channels, num_classes=num_classes))
    _set_batchnorm_statistics(model, synthetic_images(rng, 32, channels=channels))
    cam = model.get_layer("cam")
    kernel, bias = cam.get_weights()
    cam.set_weights([kernel, rng.normal(0.0, 0.5, bias.shape).astype(np.float32)])
    if train_epochs:
        images = synthetic_images(rng, 384, channels=channels)
        trainer = training_view(model)
        trainer.compile(optimizer=k.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        trainer.fit(images.astype(np.float32), toy_labels(images), epochs=train_epochs, batch_size=32, verbose=0)
        _set_batchnorm_statistics(model, images[:128])  # the weights moved; so did the statistics
    return model


def _metadata(model, labels: tuple[str, ...], channels: int, variant: str) -> ModelMetadata:
    from medtk.train.cam_geometry import cam_geometry

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
        cam_geometry=cam_geometry(model),
    )


def _tamper(model: bytes) -> bytes:
    """Flip one byte inside the largest weight buffer (the metadata keeps the old sha256)."""
    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    buffers = [root.Buffers(i) for i in range(root.BuffersLength())]
    largest = max((buffer.DataAsNumpy() for buffer in buffers if buffer.DataLength()), key=len)
    data = largest.tobytes()
    start = model.find(data[:256])
    if start < 0:
        raise RuntimeError("cannot locate the weight buffer to tamper with")
    offset = start + len(data) // 2
    changed = bytearray(model)
    changed[offset] ^= 0xFF
    return bytes(changed)


@functools.cache
def gray_model():
    """The trained gray Keras model every gray test file is converted from (built once per process)."""
    return _classifier(channels=1, num_classes=2, seed=1, train_epochs=3)


def build_onnx_models(folder: Path) -> dict[str, Path]:
    """`onnx_float32.onnx` and `onnx_int8.onnx` of the gray model, with medtk metadata and seal."""
    from medtk.compress.onnx_export import quantize_qdq, to_onnx

    gray = gray_model()
    float_model = to_onnx(gray)
    calibration = list(synthetic_images(np.random.default_rng(7), CALIBRATION_IMAGES))
    files = {"onnx_float32": float_model, "onnx_int8": quantize_qdq(float_model, calibration)}
    paths = {}
    for name, model in files.items():
        metadata = replace(_metadata(gray, GRAY_LABELS, 1, "float32"), variant=name)
        paths[name] = folder / f"{name}.onnx"
        paths[name].write_bytes(embed_metadata(model, metadata))
    return paths


def build_runtime_models(folder: Path, names: tuple[str, ...] = MODEL_NAMES) -> dict[str, Path]:
    """Write `<name>.tflite` for each of `names` into `folder`; returns their paths by name."""
    from medtk.compress.convert import convert

    gray = gray_model()
    float_bytes = convert(gray, "float32")
    files = {"float32": embed_metadata(float_bytes, _metadata(gray, GRAY_LABELS, 1, "float32")), "bare": float_bytes}
    files["tampered"] = _tamper(files["float32"])
    if "int8" in names:
        calibration = list(synthetic_images(np.random.default_rng(7), CALIBRATION_IMAGES))
        files["int8"] = embed_metadata(convert(gray, "int8", calibration), _metadata(gray, GRAY_LABELS, 1, "int8"))
    if "rgb" in names:
        rgb = _classifier(channels=3, num_classes=3, seed=2)
        files["rgb"] = embed_metadata(convert(rgb, "float32"), _metadata(rgb, RGB_LABELS, 3, "float32"))
    paths = {}
    for name in names:
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(files[name])
    return paths


def with_operating_point(model: bytes, threshold: float = 0.5) -> bytes:
    """The model re-sealed with a positive class ("pneumonia") and an operating point, as compress exports it."""
    from dataclasses import replace

    from medtk.runtime.metadata import OperatingPoint, read_metadata

    metadata = replace(read_metadata(model), positive_class="pneumonia",
                       operating_point=OperatingPoint(rule="youden", threshold=threshold))
    return embed_metadata(model, metadata)


def with_quality_gate(model: bytes, gate, calibration=None) -> bytes:
    """The model re-sealed with compress's gate outcome (a `QualityGate`) and optionally a calibration record."""
    from dataclasses import replace

    from medtk.runtime.metadata import read_metadata

    metadata = read_metadata(model)
    return embed_metadata(model, replace(metadata, quality_gate=gate, calibration=calibration or metadata.calibration))

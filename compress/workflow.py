"""`medtk compress RUN`: the run's float model -> measured TFLite variants in RUN/export + RUN/compress.json.

Order of work: check everything that can be checked cheaply (run folder, options, writable output,
model, data) before any long step; convert and measure every variant in a staging folder; decide the
quality gate; publish the files and compress.json; only then raise if the gate failed, so the failed
variants stay on disk for inspection.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medtk.errors import ConfigError, DataError, ModelError, QualityGateError
from medtk.run import RunPaths

PLAIN_VARIANTS = ("float32", "float16", "dynamic")
REFERENCE = "float32"
KNOWN_VARIANTS = ("float32", "float16", "dynamic", "int8", "int8_pqat", "pruned_int8", "int8_qat")
SPARSITY_NOTE = "sparsity shrinks the compressed (gzip) file, not the latency on XNNPACK"


@dataclass(frozen=True)
class CompressOptions:
    int8: bool = False
    prune: bool = True
    qat: bool = True
    prune_sparsity: float = 0.5
    prune_epochs: int = 2
    prune_lr: float = 1e-4
    qat_epochs: int = 2
    qat_lr: float = 1e-5
    batch_size: int | None = None  # None = the run's training batch size
    calibration: int = 300
    max_auc_drop: float = 0.01
    num_threads: int | None = None  # interpreter threads while evaluating

    def compressed_variant(self) -> str | None:
        """Name of the pruned and/or QAT variant, None when neither step runs."""
        if not self.int8 or not (self.prune or self.qat):
            return None
        return "int8_pqat" if self.prune and self.qat else ("pruned_int8" if self.prune else "int8_qat")

    def check(self) -> None:
        if not 0.0 < self.prune_sparsity < 1.0:
            raise ConfigError(f"--prune-sparsity must be between 0 and 1 (exclusive), got {self.prune_sparsity}")
        for flag, value in (("--prune-epochs", self.prune_epochs), ("--calibration", self.calibration)):
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        if self.qat_epochs < 0:
            raise ConfigError(f"--qat-epochs must be 0 or more, got {self.qat_epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        for flag, value in (("--prune-lr", self.prune_lr), ("--qat-lr", self.qat_lr)):
            if not value > 0:
                raise ConfigError(f"{flag} must be positive, got {value}")
        if self.max_auc_drop < 0:
            raise ConfigError(f"--max-auc-drop must be 0 or more, got {self.max_auc_drop}")


@dataclass(frozen=True)
class CompressResult:
    report: dict[str, Any]  # what RUN/compress.json holds
    path: Path


def _stderr(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def compress_run(run_dir: Path, options: CompressOptions, progress: Callable[[str], None] = _stderr) -> CompressResult:
    """Export, measure and gate every variant of the run's model (see the module docstring)."""
    from medtk.compress.artifacts import Staging

    options.check()
    run = RunPaths(Path(run_dir))
    run.require_model()
    if not run.config.is_file() or not run.split.is_file():
        missing = "config.toml" if not run.config.is_file() else "split.csv"
        raise ModelError(f"{run.root}: {missing} missing; not a complete `medtk train` run folder")
    _check_writable(run)
    stale = _previous_variants(run)
    inputs = _load_inputs(run, options, progress)
    staging = Staging(run.root)
    try:
        report = _export_all(run, inputs, options, staging, progress)
        final = staging.publish([v["name"] for v in report["variants"]], stale)
    finally:
        staging.discard()
    for entry in report["variants"]:
        entry["path"] = os.path.relpath(final[entry["name"]], run.root)
    from medtk.io import atomic_write_json

    atomic_write_json(run.compress, report)
    if not report["gate"]["passed"]:
        raise QualityGateError(f"{run.compress}: quality gate failed: {'; '.join(report['gate']['failures'])}")
    return CompressResult(report=report, path=run.compress)


def _check_writable(run: RunPaths) -> None:
    """Fail before the long work when the outputs could not be written (by really trying)."""
    import tempfile

    for folder in (run.root, run.export):
        if not folder.exists():
            continue
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise ModelError(f"{folder}: output folder is not writable ({error.strerror})") from None


def _previous_variants(run: RunPaths) -> set[str]:
    previous = set(KNOWN_VARIANTS)
    try:
        old = run.read_json(run.compress) or {}
    except ModelError:
        return previous  # a corrupt compress.json is replaced anyway
    for entry in old.get("variants", []):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and "/" not in entry["name"]:
            previous.add(entry["name"])
    return previous


@dataclass(frozen=True)
class _Inputs:
    model: Any
    config: Any
    config_text: str
    class_names: tuple[str, ...]
    source: str
    size: int
    channels: int
    test_images: np.ndarray
    test_labels: np.ndarray
    calibration: np.ndarray
    training: Any  # TrainingData or None


def _load_inputs(run: RunPaths, options: CompressOptions, progress) -> _Inputs:
    from medtk.config import load_config
    from medtk.data import load_dataset
    from medtk.train.model import load_classifier
    from medtk.train.pipeline import prepare_split

    config = load_config(run.config)
    progress(f"loading {run.model}")
    model = load_classifier(run.model)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    dataset = load_dataset(config.data.src, seed=config.data.seed, split_file=run.split)
    num_classes = int(model.outputs[0].shape[-1])
    if len(dataset.class_names) != num_classes:
        raise DataError(f"{config.data.src}: {len(dataset.class_names)} classes but the model predicts {num_classes}")
    test, train = dataset.splits["test"], dataset.splits["train"]
    if len(test) == 0:
        raise DataError(f"{config.data.src}: the test split of {run.split} is empty; nothing to measure the variants on")
    if options.int8 and len(train) == 0:
        raise DataError(f"{config.data.src}: the train split is empty; int8 needs calibration images from it")
    progress(f"preparing {len(test)} test images at {size}px")
    test_images = prepare_split(test, size, channels)
    calibration = np.zeros((0, size, size, channels), np.uint8)
    training = None
    if options.int8:
        needs_training = options.prune or options.qat
        if needs_training:
            progress(f"preparing {len(train)} training images for fine-tuning")
            train_images = prepare_split(train, size, channels)
            training = _training_data(train_images, train.labels, num_classes, config)
            picked = _calibration_indices(len(train), options.calibration, config.data.seed)
            calibration = train_images[picked]
        else:
            picked = _calibration_indices(len(train), options.calibration, config.data.seed)
            calibration = prepare_split(_subset(train, picked), size, channels)
        progress(f"calibration: {len(calibration)} training images")
    return _Inputs(
        model=model, config=config, config_text=run.config.read_text(encoding="utf-8"),
        class_names=tuple(dataset.class_names), source=config.data.src, size=size, channels=channels,
        test_images=test_images, test_labels=np.asarray(test.labels), calibration=calibration, training=training,
    )


def _calibration_indices(count: int, wanted: int, seed: int) -> np.ndarray:
    """A seeded random sample of the training split (all of it when it is smaller)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(count)[: min(wanted, count)])


def _subset(split, indices: np.ndarray):
    from medtk.data.base import Split

    return Split(
        ids=[split.ids[i] for i in indices], labels=np.asarray(split.labels)[indices], load=lambda i: split.load(int(indices[i]))
    )


def _training_data(images: np.ndarray, labels: np.ndarray, num_classes: int, config):
    from medtk.compress.finetune import TrainingData
    from medtk.train.fit import class_weights

    labels = np.asarray(labels, dtype=np.int64)
    return TrainingData(
        images=images, labels=labels, num_classes=num_classes,
        class_weight=class_weights(labels, num_classes, config.train.class_weights),
        augment=config.augment, seed=config.train.seed,
    )


def _export_all(run: RunPaths, inputs: _Inputs, options: CompressOptions, staging, progress) -> dict[str, Any]:
    from medtk.compress.artifacts import gzip_size, model_metadata, provenance
    from medtk.compress.convert import convert, input_dtype
    from medtk.compress.evaluate import cam_agreement, headline_metrics, run_model
    from medtk.compress.sparsity import kernel_sparsity

    origin = provenance(run.root, inputs.config_text, inputs.source)
    float_sparsity = kernel_sparsity(inputs.model)
    built: list[tuple[str, bytes, float, str]] = []  # (variant, converted bytes, sparsity, dtype)
    plain = [*PLAIN_VARIANTS, *(["int8"] if options.int8 else [])]
    for variant in plain:
        progress(f"converting {variant}")
        calibration = list(inputs.calibration) if variant == "int8" else None
        built.append((variant, convert(inputs.model, variant, calibration), float_sparsity, input_dtype(variant)))
    compressed = options.compressed_variant()
    extra: dict[str, Any] = {}
    if compressed is not None:
        model_bytes, sparsity, extra = _compressed_model(inputs, options, progress)
        built.append((compressed, model_bytes, sparsity, "uint8"))

    def metadata(variant: str, dtype: str, metrics: dict | None):
        return model_metadata(
            variant=variant, labels=inputs.class_names, size=inputs.size, channels=inputs.channels, dtype=dtype,
            provenance=origin, metrics=metrics,
        )

    outputs, entries = {}, []
    for variant, model_bytes, sparsity, dtype in built:
        staging.write(variant, model_bytes, metadata(variant, dtype, None))
        outputs[variant] = run_model(staging.path(variant), inputs.test_images, progress, options.num_threads)
        test = headline_metrics(inputs.test_labels, outputs[variant].probs, inputs.class_names)
        exported = {"test_auc": test["auc"], "test_accuracy": test["accuracy"], "test_images": len(inputs.test_labels)}
        final = staging.write(variant, model_bytes, metadata(variant, dtype, exported))
        entries.append({
            "name": variant, "path": "", "status": "passed", "input_dtype": dtype,
            "size_bytes": len(final), "gzip_bytes": gzip_size(final), "sparsity": round(float(sparsity), 4),
            "test": test,
        })
    reference = outputs[REFERENCE]
    ref_test = entries[0]["test"]
    for entry in entries:
        entry["delta_auc"] = _delta(entry["test"]["auc"], ref_test["auc"])
        entry["delta_accuracy"] = _delta(entry["test"]["accuracy"], ref_test["accuracy"])
        entry["cam_agreement"] = cam_agreement(reference, outputs[entry["name"]])
    gate = _gate(entries, options, extra.get("sparsity_after_qat"))
    keras_test = (run.read_json(run.metrics) or {}).get("test")
    return {
        "reference": {
            "variant": REFERENCE,
            "measured": "float32 TFLite through medtk.runtime on the test split; every delta is against it",
            "test": ref_test,
            "keras_test": {"auc": keras_test.get("auc"), "accuracy": keras_test.get("accuracy")} if keras_test else None,
            "test_images": int(len(inputs.test_labels)),
        },
        "variants": entries,
        "gate": gate,
        "options": asdict(options),
        "compression": extra,
        "calibration_images": int(len(inputs.calibration)),
        "provenance": origin,
        "note": SPARSITY_NOTE,
    }


def _compressed_model(inputs: _Inputs, options: CompressOptions, progress) -> tuple[bytes, float, dict[str, Any]]:
    """Prune and/or QAT a copy of the float model, then convert it to full int8."""
    from medtk.compress.convert import convert
    from medtk.compress.prune import copy_model, plan_schedule, prune
    from medtk.compress.qat import quantization_aware_training
    from medtk.compress.sparsity import kernel_sparsity

    batch_size = options.batch_size or inputs.config.train.batch_size
    model, extra = copy_model(inputs.model), {"batch_size": batch_size}
    if options.prune:
        model, reached = prune(
            model, inputs.training, sparsity=options.prune_sparsity, epochs=options.prune_epochs,
            learning_rate=options.prune_lr, batch_size=batch_size, progress=progress,
        )
        schedule = plan_schedule(options.prune_sparsity, options.prune_epochs, inputs.training.steps_per_epoch(batch_size))
        extra.update(target_sparsity=options.prune_sparsity, sparsity_after_pruning=round(reached, 4), schedule=asdict(schedule))
    if options.qat:
        model = quantization_aware_training(
            model, inputs.training, prune_preserve=options.prune, epochs=options.qat_epochs,
            learning_rate=options.qat_lr, batch_size=batch_size, progress=progress,
        )
    sparsity = kernel_sparsity(model)
    if options.prune and options.qat:
        extra["sparsity_after_qat"] = round(sparsity, 4)
        progress(f"sparsity after QAT: {sparsity:.3f} (target {options.prune_sparsity:.3f})")
    progress(f"converting {options.compressed_variant()}")
    return convert(model, "int8", list(inputs.calibration)), sparsity, extra


def _delta(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else round(value - reference, 6)


def _gate(entries: list[dict[str, Any]], options: CompressOptions, sparsity_after_qat: float | None) -> dict[str, Any]:
    from medtk.compress.prune import SPARSITY_TOLERANCE

    failures = []
    for entry in entries[1:]:
        name, delta = entry["name"], entry["delta_auc"]
        if delta is None:
            failures.append(f"{name}: test AUC undefined (one class in the test split), the AUC gate cannot pass")
        elif -delta > options.max_auc_drop:
            failures.append(
                f"{name}: test AUC {entry['test']['auc']:.4f} is {-delta:.4f} below float32 "
                f"(--max-auc-drop {options.max_auc_drop:g})"
            )
        else:
            continue
        entry["status"] = "failed"
    if sparsity_after_qat is not None and abs(sparsity_after_qat - options.prune_sparsity) > SPARSITY_TOLERANCE:
        entry = next(e for e in entries if e["name"] == options.compressed_variant())
        entry["status"] = "failed"
        failures.append(
            f"{entry['name']}: sparsity {sparsity_after_qat:.3f} after QAT, target {options.prune_sparsity:.3f} "
            f"+/- {SPARSITY_TOLERANCE}"
        )
    return {"max_auc_drop": options.max_auc_drop, "passed": not failures, "failures": failures}

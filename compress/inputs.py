"""What compress works on, loaded once before any long step: the run's float model, its prepared test and
validation images, the int8 calibration images (a seeded sample of the training split) and, for accuracy
control, a held-out sample of other training images (never calibrated on: they rank which ops stay float)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from medtk.compress.options import CompressOptions
from medtk.errors import DataError
from medtk.run import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    model: Any
    config: Any
    config_text: str
    class_names: tuple[str, ...]
    source: str
    size: int
    channels: int
    test_images: np.ndarray
    test_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    calibration: np.ndarray
    held_out: np.ndarray  # training images not among `calibration` (empty without accuracy control)
    training: Any  # TrainingData or None
    finding: Any  # medtk.clinical.Finding or None (multi-class)
    temperature: Any  # medtk.runtime.metadata.ModelCalibration: the temperature folded in at training, and why


def load_inputs(run: Run, options: CompressOptions) -> Inputs:
    from medtk.clinical import resolve_finding
    from medtk.train.model import load_classifier
    from medtk.train.pipeline import prepare_split

    config = run.config()
    log.info("loading %s", run.model_file)
    model = load_classifier(run.model_file)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    dataset = run.dataset()
    num_classes = int(model.outputs[0].shape[-1])
    if len(dataset.class_names) != num_classes:
        raise DataError(f"{config.data.src}: {len(dataset.class_names)} classes but the model predicts {num_classes}")
    test, train, val = dataset.splits["test"], dataset.splits["train"], dataset.splits["val"]
    finding = resolve_finding(options.positive_class or config.clinical.positive_class, dataset.class_names,
                              dataset.finding)
    if len(test) == 0:
        raise DataError(f"{config.data.src}: the test split of {run.split_file} is empty; nothing to measure the variants on")
    if options.int8 and len(train) == 0:
        raise DataError(f"{config.data.src}: the train split is empty; int8 needs calibration images from it")
    test_images = prepare_split(test, size, channels)
    val_images = prepare_split(val, size, channels)
    calibration = held_out = np.zeros((0, size, size, channels), np.uint8)
    training = None
    if options.int8:
        picked = _calibration_indices(len(train), options.calibration, config.data.seed)
        others = _held_out_indices(len(train), picked, options.held_out if options.accuracy_control else 0,
                                   config.data.seed)
        if options.prune or options.qat:
            train_images = prepare_split(train, size, channels)
            training = _training_data(train_images, train.labels, num_classes, config)
            calibration, held_out = train_images[picked], train_images[others]
        else:
            calibration = prepare_split(_subset(train, picked), size, channels)
            held_out = prepare_split(_subset(train, others), size, channels) if len(others) else held_out
        log.info("calibration: %d training images; held out for accuracy control: %d others",
                 len(calibration), len(held_out))
        if (few := few_calibration_images(len(calibration), len(train))) is not None:
            log.warning(few)
    return Inputs(
        model=model, config=config, config_text=run.config_file.read_text(encoding="utf-8"),
        class_names=tuple(dataset.class_names), source=config.data.src, size=size, channels=channels,
        test_images=test_images, test_labels=np.asarray(test.labels), val_images=val_images,
        val_labels=np.asarray(val.labels), calibration=calibration, held_out=held_out, training=training,
        finding=finding,
        temperature=training_temperature(run),
    )


MIN_CALIBRATION_IMAGES = 50  # 16 images multiplied int8's test error 2.3-4.4x; 50 was within 20% of 300


def few_calibration_images(count: int, training_images: int) -> str | None:
    """The warning when int8's ranges come from fewer than MIN_CALIBRATION_IMAGES images, or None.

    Every activation range comes from the calibration images alone: on two ResNet50s (benchmarks/RESULTS.md,
    "How many calibration images") the RMS int8 logit error on test images was 2.3x and 4.4x that with
    300 images when 16 were used, and within 20% of it with 50."""
    if count >= MIN_CALIBRATION_IMAGES:
        return None
    cause = (f"the training split has only {training_images} images" if count == training_images
             else f"--calibration {count}")
    return (f"int8 ranges come from {count} calibration images ({cause}); with fewer than "
            f"{MIN_CALIBRATION_IMAGES} they may not cover unseen images (16 multiplied int8's error on test "
            "images 2.3-4.4x in our measurements): give --calibration 100 or more where the training split allows")


def training_intensity(run: Run):
    """What training saw (data.json); a run trained before it was recorded exports without it."""
    from medtk.runtime.intensity import Intensity

    summary = run.data_summary()
    return Intensity.from_dict(summary.intensity) if summary is not None and summary.intensity else None


def training_temperature(run: Run):
    """Training's temperature decision (training.json), folded into the model every variant is converted
    from; each variant may add its own on top (`medtk.compress.variant_temperature`). A run trained
    before the decision was recorded carries its temperature only."""
    from medtk.runtime.metadata import ModelCalibration

    training = run.training()
    if training is None:
        return ModelCalibration()
    decision = training.calibration
    if decision is None:
        return ModelCalibration(temperature=float(training.temperature))
    return ModelCalibration(temperature=float(training.temperature), applied=decision.applied,
                            reason=decision.reason, fitted_temperature=decision.fitted_temperature)


def _calibration_indices(count: int, wanted: int, seed: int) -> np.ndarray:
    """A seeded random sample of the training split (all of it when it is smaller)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(count)[: min(wanted, count)])


def _held_out_indices(count: int, picked: np.ndarray, wanted: int, seed: int) -> np.ndarray:
    """A seeded sample of the training images calibration did not pick (fewer when there are not enough)."""
    rest = np.setdiff1d(np.arange(count), picked)
    rng = np.random.default_rng([seed, 1])
    return np.sort(rng.permutation(rest)[: min(wanted, len(rest))])


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

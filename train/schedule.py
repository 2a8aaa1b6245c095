"""How long and how patiently a run trains, from the sizes of its training and validation splits.

A fixed number of epochs means a few hundred optimizer steps on a small dataset (issue 22: 546 images,
10 epochs, 180 steps, still learning when it stopped), so the run is scheduled by steps: `train.epochs
= -1` (auto) is raised until the last phase makes at least `train.min_steps` steps, and early stopping
does not start before that floor. An explicit `--epochs` below the floor is respected, with a warning.

A validation split of a few dozen images gives an AUC that moves by several points from epoch to
epoch by chance. Early stopping, learning-rate reduction and the best checkpoint therefore watch an
exponential moving average of validation AUC (`val_auc_smooth`), and count as improvement only a rise
larger than half the AUC's standard error on that split (Hanley & McNeil 1982, at AUC 0.9): about
0.03 for 39 images, 0.008 for PneumoniaMNIST's 524. Patience grows with the run's length (a tenth of
its epochs), so a 100-epoch run on tiny data is not cut after 5 noisy epochs, and the learning rate is
not reduced during the first quarter of the floor (the first epochs' validation AUC is noise: a lucky
early value cut the rate before the network had learnt anything).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medtk.config import RunConfig

DEFAULT_EPOCHS = 20  # train.epochs = -1 (auto): at least this many, more if the step floor needs them
SCRATCH_MIN_IMAGES = 1000  # fewer training images than this from scratch: warn (see `small_data_warning`)
REFERENCE_AUC = 0.9  # the AUC at which the validation split's standard error sets min_delta
MIN_DELTA_SHARE_OF_SE = 0.5  # epochs compared on the same images differ by less than independent splits
PATIENCE_SHARE_OF_EPOCHS = 0.1
LR_WARMUP_SHARE_OF_FLOOR = 0.25


@dataclass(frozen=True)
class Schedule:
    """The last phase's length and the rules that watch validation (logged in the plan, saved in
    training.json)."""

    steps_per_epoch: int
    epochs: int  # of the last phase (fine-tuning, or the only phase from scratch)
    floor_epochs: int  # epochs that reach train.min_steps; early stopping starts after them
    min_steps: int
    patience: int  # early stopping, epochs without a min_delta rise of the smoothed val AUC
    lr_patience: int  # learning-rate reduction (and its cooldown)
    lr_start_epoch: int  # no learning-rate reduction before this epoch of the last phase
    min_delta: float
    smoothing: float  # weight of the previous average in val_auc_smooth (0 = raw val AUC)
    warnings: tuple[str, ...] = ()


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC measured on `positives` x `negatives` images."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) \
        / (positives * negatives)
    return math.sqrt(variance)


def validation_min_delta(val_labels: np.ndarray, num_classes: int) -> float:
    """Half the AUC standard error on this validation split; the rarest class against the rest (the
    macro AUC is as noisy as its noisiest class). Hanley-McNeil's formula is not symmetric in the two
    groups while the AUC of one class against the rest is, so the two orientations' variances are averaged."""
    counts = np.bincount(np.asarray(val_labels, dtype=np.int64), minlength=num_classes)
    rare = int(counts.min())
    rest = int(counts.sum()) - rare
    if rare == 0:
        return 0.0  # an absent class: val AUC is undefined anyway; compare raw values
    variance = (auc_standard_error(REFERENCE_AUC, rare, rest) ** 2 + auc_standard_error(REFERENCE_AUC, rest, rare) ** 2) / 2
    return MIN_DELTA_SHARE_OF_SE * math.sqrt(variance)


def small_data_warning(config: RunConfig, train_images: int) -> str | None:
    """One line when a from-scratch run has too few images to learn a large backbone, with what to do.
    Not for medtk's synthetic phantoms: made to be learnt from scratch at these sizes (the demo's measured
    quality, benchmarks/RESULTS.md), a warning there would contradict the result it prints."""
    if config.model.weights != "none" or train_images >= SCRATCH_MIN_IMAGES:
        return None
    if config.data.src.startswith("synthetic:"):
        return None
    smaller = "" if config.model.arch == "mobilenetv2" else "a smaller backbone (--arch mobilenetv2), "
    return (f"{train_images} training images are too few to train {config.model.arch} from scratch "
            f"(fewer than {SCRATCH_MIN_IMAGES}); expect a weak model. Alternatives: --weights imagenet (or a "
            f"medtk RUN trained on similar images), {smaller}more images, or more epochs (--min-steps)")


def plan_schedule(config: RunConfig, train_images: int, val_labels: np.ndarray, num_classes: int,
                  global_batch: int) -> Schedule:
    """The last phase's epochs and the validation rules for these split sizes."""
    train = config.train
    steps_per_epoch = max(1, math.ceil(train_images / global_batch))
    floor_epochs = math.ceil(train.min_steps / steps_per_epoch) if train.min_steps else 0
    warnings = []
    if train.epochs == -1:
        epochs = max(DEFAULT_EPOCHS, floor_epochs)
    else:
        epochs = train.epochs
        if epochs < floor_epochs:
            warnings.append(f"train.epochs = {epochs} gives {epochs * steps_per_epoch} optimizer steps, below the "
                            f"floor of {train.min_steps} (train.min_steps) a run needs to learn; {floor_epochs} "
                            f"epochs reach it (leave --epochs out to get them, or lower --min-steps)")
    if (small := small_data_warning(config, train_images)) is not None:
        warnings.append(small)
    patience = max(train.patience, math.ceil(PATIENCE_SHARE_OF_EPOCHS * epochs))
    return Schedule(
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        floor_epochs=min(floor_epochs, epochs),
        min_steps=train.min_steps,
        patience=patience,
        lr_patience=max(1, patience // 2),
        lr_start_epoch=math.ceil(LR_WARMUP_SHARE_OF_FLOOR * min(floor_epochs, epochs)),
        min_delta=round(validation_min_delta(val_labels, num_classes), 4),
        smoothing=train.val_smoothing,
        warnings=tuple(warnings),
    )

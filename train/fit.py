"""Two-phase transfer learning with checkpoints, early stopping and resume after a hard kill.

Phase one trains the head on a frozen backbone; phase two unfreezes the backbone from
`fine_tune_at` at a lower learning rate. From scratch (`weights=none`) a frozen random backbone is
useless, so there is one phase with the whole network (BatchNorm included) trainable.

Resume: Keras' BackupAndRestore keeps the weights, optimizer and epoch of the phase in progress (one
backup folder per phase, since the trainable set differs); `checkpoints/state.json` (state.py) records
finished phases and the best validation AUC so far, so the best checkpoint of an earlier session is
never overwritten by a worse one after a restart.

What the callbacks watch is `val_auc_smooth`, a moving average of validation AUC, with a minimum rise,
patience and a start epoch from `schedule.py` (small validation splits are noisy). The average is
recomputed from history.csv when a phase resumes, so a kill -9 does not reset it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.config import RunConfig
from medtk.errors import ConfigError
from medtk.progress import keras_verbosity
from medtk.run import Run
from medtk.train.schedule import Schedule
from medtk.train.state import TrainingState
from medtk.train.tfenv import keras
from medtk.train.timings import TimingRecorder

log = logging.getLogger(__name__)
MONITOR = "val_auc_smooth"  # what early stopping, LR reduction and the best checkpoint watch
RAW_MONITOR = "val_auc"
# The pass before each validation (the final pass after training uses every training image). 256 images give
# each BatchNorm channel at least 256 x 6 x 6 values at 96 px and cost a third of a full pass over the demo's
# 720; their val AUC against all images': benchmarks/RESULTS.md, "The demo in minutes".
EPOCH_BATCHNORM_IMAGES = 256


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    learning_rate: float
    fine_tune_at: str | int | None  # None = whole backbone frozen
    freeze_batchnorm: bool
    floor_epochs: int = 0  # early stopping starts after these (the step floor)
    lr_start_epoch: int = 0  # the learning rate is not reduced before this epoch of the phase


@dataclass(frozen=True)
class FitResult:
    best_val_auc: float | None  # None when no epoch reported a validation AUC
    epochs_run: int
    phases: tuple[str, ...]


def plan_phases(config: RunConfig, default_fine_tune_at: str, schedule: Schedule) -> list[Phase]:
    """Turn the configuration into the phases to run (the plan is printed and saved); the last phase is
    as long as the schedule says (the step floor)."""
    train = config.train
    pretrained = config.model.weights != "none"
    head_epochs = train.head_epochs if train.head_epochs >= 0 else (3 if pretrained else 0)
    if not pretrained:
        return [Phase("scratch", schedule.epochs, train.learning_rate, 0, freeze_batchnorm=False,
                      floor_epochs=schedule.floor_epochs, lr_start_epoch=schedule.lr_start_epoch)]
    fine_tune_at = default_fine_tune_at if train.fine_tune_at == "auto" else train.fine_tune_at
    phases = []
    if head_epochs:
        phases.append(Phase("head", head_epochs, train.learning_rate, None, freeze_batchnorm=True))
    if schedule.epochs:
        phases.append(Phase("fine_tune", schedule.epochs, train.fine_tune_learning_rate, fine_tune_at,
                            freeze_batchnorm=True, floor_epochs=schedule.floor_epochs,
                            lr_start_epoch=schedule.lr_start_epoch))
    return phases


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> dict[int, float] | None:
    """'balanced': scikit-learn's n / (K_present * count_k) for the classes present; 'none': no weights."""
    from sklearn.utils.class_weight import compute_class_weight

    if mode not in ("balanced", "none"):
        raise ConfigError(f"train.class_weights {mode!r} is not one of balanced, none")
    if mode == "none":
        return None
    present = np.unique(np.asarray(labels, dtype=np.int64))
    weights = compute_class_weight("balanced", classes=present, y=np.asarray(labels, dtype=np.int64))
    return {int(k): float(w) for k, w in zip(present, weights) if k < num_classes}


def _atomic_best_checkpoint(path: Path, state: TrainingState):
    """Save weights when val AUC improves, via a temp file + rename (ModelCheckpoint writes in place).

    `state.epochs` is set from the epoch index, not incremented: an epoch redone after a kill counts once.
    """
    k = keras()

    class AtomicBestCheckpoint(k.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(MONITOR)
            state.epochs = max(state.epochs, epoch + 1)
            if value is not None and value > state.best:
                state.best = float(value)
                temporary = path.with_name(".best.tmp.h5")
                self.model.save_weights(temporary)
                os.replace(temporary, path)
            state.save()

    return AtomicBestCheckpoint()


def _phase_done_marker(name: str, state: TrainingState):
    """Record the phase as finished at train end, *before* BackupAndRestore deletes its backup (it is
    after this callback in the list): a kill between the two never makes a resume redo the phase."""
    k = keras()

    class PhaseDone(k.callbacks.Callback):
        def on_train_end(self, logs=None):
            if name not in state.done:
                state.done.append(name)
                state.save()

    return PhaseDone()


def _history_trim(path: Path):
    """On a resumed phase, drop history rows of epochs that are about to be redone (a kill can land
    after CSVLogger wrote an epoch and before its backup was saved), so each epoch appears once."""
    import csv

    k = keras()

    class HistoryTrim(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if getattr(self, "trimmed", False) or not path.is_file():
                return
            self.trimmed = True
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
            kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < epoch]
            if len(kept) < len(rows):
                from medtk.io import atomic_write_text

                atomic_write_text(path, "".join(",".join(row) + "\n" for row in kept))

    return HistoryTrim()


def _smoothed_validation(path: Path, phase_start: int, smoothing: float):
    """Adds `val_auc_smooth`, an exponential moving average of this phase's val AUC, to the epoch's logs
    (before the callbacks that watch it). On the phase's first epoch of a session the average is rebuilt
    from history.csv's earlier rows of the phase, so a resumed run continues the same average."""
    import csv

    k = keras()

    class SmoothedValidation(k.callbacks.Callback):
        average: float | None = None
        rebuilt = False

        def on_epoch_begin(self, epoch, logs=None):
            if self.rebuilt:
                return
            self.rebuilt = True
            if path.is_file():
                with open(path, newline="") as handle:
                    for row in csv.DictReader(handle):
                        if phase_start <= int(row["epoch"]) < epoch and row.get(RAW_MONITOR):
                            self._update(float(row[RAW_MONITOR]))

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and logs.get(RAW_MONITOR) is not None:
                logs[MONITOR] = self._update(float(logs[RAW_MONITOR]))

        def _update(self, value: float) -> float:
            self.average = value if self.average is None else smoothing * self.average + (1 - smoothing) * value
            return self.average

    return SmoothedValidation()


def _reduce_lr_on_plateau(schedule: Schedule, start_from_epoch: int):
    """Keras' ReduceLROnPlateau that does nothing before `start_from_epoch` (it has no such argument, unlike
    EarlyStopping): on tiny data the first epochs' validation AUC is noise, and a lucky early value would
    otherwise cut the learning rate before the network has learnt anything (the issue's run, cut at epoch 4)."""
    k = keras()

    class ReduceLROnPlateauAfterWarmup(k.callbacks.ReduceLROnPlateau):
        def on_epoch_end(self, epoch, logs=None):
            if epoch >= start_from_epoch:
                return super().on_epoch_end(epoch, logs)
            if logs is not None:  # the history keeps its lr column from the first epoch on
                logs["lr"] = float(k.backend.get_value(self.model.optimizer.learning_rate))

    return ReduceLROnPlateauAfterWarmup(monitor=MONITOR, mode="max", factor=0.3, patience=schedule.lr_patience,
                                        min_delta=schedule.min_delta, cooldown=schedule.lr_patience, min_lr=1e-7)


def epoch_batchnorm_sample(images, rng: np.random.Generator):
    """The images of one pre-validation pass: a new random subset of at most EPOCH_BATCHNORM_IMAGES of the
    array each epoch, or, from a function (count -> batches), the streaming pipeline's first records."""
    if callable(images):
        return images(EPOCH_BATCHNORM_IMAGES)
    return images[np.sort(rng.permutation(len(images))[:EPOCH_BATCHNORM_IMAGES])]


def _precise_batchnorm_before_validation(model, images, batch_size: int, seed: int, recorder):
    """Recompute BatchNorm statistics before each epoch's validation while BatchNorm trains.

    With momentum-averaged statistics a short run validates (and early-stops, checkpoints, lowers the
    learning rate) on statistics that lag the weights; validating on exact ones makes every epoch's
    val AUC mean what it says. Bounded: each pass takes `epoch_batchnorm_sample(images, rng)`; a function
    `images` is the streaming pipeline's first records, which `medtk prepare` wrote in a seeded random order.
    """
    from medtk.train.batchnorm import precise_batchnorm

    k = keras()
    rng = np.random.default_rng(seed)

    class PreciseBatchNormBeforeValidation(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.pending = True

        def on_test_begin(self, logs=None):
            if getattr(self, "pending", False):
                self.pending = False
                precise_batchnorm(model, epoch_batchnorm_sample(images, rng), batch_size=batch_size, seed=seed)
                recorder.lap("precise_batchnorm")

    return PreciseBatchNormBeforeValidation()


def fit_phases(model, train_view, phases, train_data, val_data, config: RunConfig, run: Run, placement,
               schedule: Schedule, recorder: TimingRecorder) -> FitResult:
    """Run the phases in order, skipping those a previous session finished; end on the best weights.
    `recorder` times each epoch's phases (train/timings.py)."""
    from medtk.train.model import set_trainable_from

    k = keras()
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    state = TrainingState.load(run)
    best_path = run.checkpoints / "best.h5"
    initial_epoch = 0
    for phase in phases:
        if phase.name in state.done:
            initial_epoch += phase.epochs
            continue
        if best_path.is_file():  # start a later phase from the best weights of the earlier one
            train_view.load_weights(best_path)
        with placement.strategy.scope():
            set_trainable_from(model, phase.fine_tune_at, freeze_batchnorm=phase.freeze_batchnorm)
            train_view.compile(
                optimizer=k.optimizers.Adam(learning_rate=phase.learning_rate),
                loss="categorical_crossentropy",
                metrics=[
                    k.metrics.AUC(name="auc", multi_label=True, num_labels=int(train_view.output_shape[-1])),
                    k.metrics.CategoricalAccuracy(name="accuracy"),
                ],
                jit_compile=placement.xla,
            )
        log.info("phase %s: %d epochs, lr %g, trainable weights %d", phase.name, phase.epochs, phase.learning_rate,
                 len(train_view.trainable_weights))
        # Order matters for resume at any instant: the epoch's checkpoint, state and history row are
        # written before BackupAndRestore (last but the timer, which only writes timings.json) records the
        # epoch as done, and the phase is marked done before BackupAndRestore deletes its backup at train end.
        first, last = recorder.callbacks(phase.name, train_data["count"])
        callbacks = [
            first,
            _phase_done_marker(phase.name, state),
            _history_trim(run.history_file),
            _smoothed_validation(run.history_file, initial_epoch, schedule.smoothing),
            _atomic_best_checkpoint(best_path, state),
            k.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=schedule.patience,
                                      min_delta=schedule.min_delta, start_from_epoch=initial_epoch + phase.floor_epochs),
            _reduce_lr_on_plateau(schedule, initial_epoch + phase.lr_start_epoch),
            k.callbacks.CSVLogger(str(run.history_file), append=True),
            k.callbacks.TensorBoard(log_dir=str(run.logs), profile_batch=0),
        ]
        if config.train.precise_batchnorm and not phase.freeze_batchnorm:  # before the checkpoint reads val AUC
            callbacks.insert(3, _precise_batchnorm_before_validation(
                model, train_data["images"], config.train.batch_size, config.train.seed, recorder))
        callbacks.append(k.callbacks.BackupAndRestore(str(run.checkpoints / f"backup_{phase.name}")))
        callbacks.append(last)  # after every other callback: its lap is the epoch's checkpointing
        train_view.fit(
            train_data["dataset"],
            validation_data=val_data,
            epochs=initial_epoch + phase.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=train_data["steps_per_epoch"],
            class_weight=train_data["class_weight"],
            callbacks=callbacks,
            verbose=keras_verbosity(),
        )
        initial_epoch += phase.epochs
    if best_path.is_file():
        train_view.load_weights(best_path)
    best = state.best if math.isfinite(state.best) else None
    return FitResult(best_val_auc=best, epochs_run=state.epochs, phases=tuple(p.name for p in phases))

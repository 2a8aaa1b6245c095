"""Magnitude pruning: wrap the conv/dense kernels, fine-tune with a polynomial sparsity ramp, strip.

The ramp's `end_step` comes from the real number of optimizer steps (epochs x ceil(n_train / batch)):
a schedule longer than the fine-tuning never reaches its target, one shorter wastes the recovery time.
The mask is updated every `frequency` steps, and `end_step` sits on such a step so the last update
applies exactly the target; the final ~20% of the steps fine-tune at that sparsity to recover accuracy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from medtk.compress.finetune import Distillation, TrainingData, fine_tune, make_trainable
from medtk.compress.options import SPARSITY_TOLERANCE
from medtk.compress.sparsity import is_prunable, kernel_sparsity
from medtk.errors import ModelError
from medtk.train.model import custom_objects
from medtk.train.tfenv import keras, tfmot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneSchedule:
    target: float
    total_steps: int
    end_step: int
    frequency: int


def plan_schedule(target: float, epochs: int, steps_per_epoch: int) -> PruneSchedule:
    total = epochs * steps_per_epoch
    frequency = max(1, min(100, total // 10))
    end_step = max(frequency, int(total * 0.8) // frequency * frequency)
    return PruneSchedule(target=target, total_steps=total, end_step=end_step, frequency=frequency)


def copy_model(model):
    """An independent copy with the same weights, so the float model stays untouched."""
    k = keras()
    with k.utils.custom_object_scope(custom_objects()):
        copy = k.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def prune(
    model, data: TrainingData, *, sparsity: float, epochs: int, learning_rate: float, batch_size: int,
    distillation: Distillation | None = None,
):
    """Return (a pruned copy of `model` with the wrappers stripped, the measured kernel sparsity);
    `distillation`: fine-tune against the float model's probabilities and CAMs too."""
    k, mot = keras(), tfmot()
    schedule = plan_schedule(sparsity, epochs, data.steps_per_epoch(batch_size))
    log.info(
        "pruning to %.0f%% sparsity: %d steps, ramp ends at step %d, mask update every %d",
        sparsity * 100, schedule.total_steps, schedule.end_step, schedule.frequency,
    )
    polynomial = mot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=schedule.end_step,
        frequency=schedule.frequency,
    )
    base = copy_model(model)
    make_trainable(base)

    def wrap(layer):
        return mot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=polynomial) if is_prunable(layer) else layer

    with mot.sparsity.keras.prune_scope(), k.utils.custom_object_scope(custom_objects()):
        wrapped = k.models.clone_model(base, clone_function=wrap)
    fine_tune(
        wrapped,
        data,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        stage="prune",
        callbacks=(mot.sparsity.keras.UpdatePruningStep(),),
        distillation=distillation,
    )
    stripped = mot.sparsity.keras.strip_pruning(wrapped)
    reached = kernel_sparsity(stripped)
    if abs(reached - sparsity) > SPARSITY_TOLERANCE:
        raise ModelError(
            f"pruning reached {reached:.3f} sparsity, target {sparsity:.3f} "
            f"(schedule: {schedule.total_steps} steps, end_step {schedule.end_step})"
        )
    log.info("pruned: conv/dense kernel sparsity %.3f", reached)
    return stripped, reached

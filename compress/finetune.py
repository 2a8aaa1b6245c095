"""Short fine-tuning passes for pruning and QAT: the probs-only view of a two-output model, fitted quietly
with one progress line per epoch.

Keras fits the single-output view (loss on `probs`); it is built from `model.outputs`, not from
`get_layer("probs").output`, because the clone-and-wrap steps of TFMOT reuse layer objects, and a
shared layer's `.output` belongs to the first model it was called in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from medtk.train.tfenv import keras

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """The run's training split as prepared raw pixels, plus how the run fitted it."""

    images: np.ndarray  # uint8 (N, S, S, C)
    labels: np.ndarray  # int64 (N,)
    num_classes: int
    class_weight: dict[int, float] | None
    augment: object | None  # medtk.config.AugmentConfig of the run
    seed: int

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.images) // batch_size)


def probs_view(model):
    """Single-output model (probs) sharing every layer with `model`."""
    k = keras()
    index = list(model.output_names).index("probs")
    return k.Model(model.inputs, model.outputs[index], name=f"{model.name}_probs")


def make_trainable(model) -> None:
    """Everything trains except BatchNorm: small fine-tuning batches must not overwrite its statistics
    (a frozen BatchNorm runs in inference mode in Keras 2)."""
    k = keras()
    for layer in model.layers:
        layer.trainable = not isinstance(layer, k.layers.BatchNormalization)


def fine_tune(
    model,
    data: TrainingData,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    stage: str,
    callbacks: tuple = (),
) -> None:
    """Fit `model`'s probs view on the training split for `epochs` epochs."""
    from medtk.train.pipeline import make_dataset

    k = keras()
    view = probs_view(model)
    view.compile(optimizer=k.optimizers.Adam(learning_rate), loss="categorical_crossentropy")
    dataset = make_dataset(
        data.images, data.labels, data.num_classes, batch_size, training=True, augment=data.augment, seed=data.seed
    )
    view.fit(
        dataset,
        epochs=epochs,
        class_weight=data.class_weight,
        callbacks=[*callbacks, _epoch_line(stage, epochs)],
        verbose=0,
    )


def _epoch_line(stage: str, epochs: int):
    """A Keras callback logging one line per epoch (defined here so importing this module stays light)."""
    k = keras()

    class EpochLine(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss", float("nan"))
            seconds = time.perf_counter() - self.started
            log.info("%s: epoch %d/%d loss %.4f (%.0f s)", stage, epoch + 1, epochs, loss, seconds)

    return EpochLine()

"""Short fine-tuning passes for pruning and QAT, fitted quietly with one progress line per epoch.

Without a teacher, Keras fits the single-output view (loss on `probs`); it is built from
`model.outputs`, not from `get_layer("probs").output`, because the clone-and-wrap steps of TFMOT reuse
layer objects, and a shared layer's `.output` belongs to the first model it was called in.

With a teacher (the float model, `Distillation`), the student learns the labels and also the teacher's
probabilities (KL divergence) and class activation maps (1 - Pearson correlation of each class's map
over the cells, so where the model looks is trained, not only what it answers): pruning and QAT
otherwise keep the AUC but move the CAM (measured: benchmarks/RESULTS.md).
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


@dataclass(frozen=True)
class Distillation:
    """The float model as teacher during fine-tuning; weights of its soft targets next to the labels' loss."""

    teacher: object  # a medtk classifier (outputs `probs` and `cam`); never trained here
    probs_weight: float = 1.0
    cam_weight: float = 1.0


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
    distillation: Distillation | None = None,
) -> None:
    """Fit `model` on the training split for `epochs` epochs (its probs view, or distilled from a teacher)."""
    from medtk.train.pipeline import make_dataset

    k = keras()
    if distillation is None:
        view = probs_view(model)
        view.compile(optimizer=k.optimizers.Adam(learning_rate), loss="categorical_crossentropy")
    else:
        view = _distiller(model, distillation)
        view.compile(optimizer=k.optimizers.Adam(learning_rate))
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


def _distiller(student, distillation: Distillation):
    """A Keras model whose `fit` trains `student` on labels + the teacher's probabilities and CAMs."""
    from medtk.train.tfenv import tensorflow

    tf, k = tensorflow(), keras()
    teacher = distillation.teacher
    student_index = {name: list(student.output_names).index(name) for name in ("probs", "cam")}
    teacher_index = {name: list(teacher.output_names).index(name) for name in ("probs", "cam")}
    epsilon = 1e-7

    def map_correlation(a, b):
        """Mean over images and classes of the Pearson r of two (N, h, w, K) maps over their cells."""
        a = a - tf.reduce_mean(a, axis=(1, 2), keepdims=True)
        b = b - tf.reduce_mean(b, axis=(1, 2), keepdims=True)
        cov = tf.reduce_sum(a * b, axis=(1, 2))
        norm = tf.sqrt(tf.reduce_sum(a * a, axis=(1, 2)) * tf.reduce_sum(b * b, axis=(1, 2)) + epsilon)
        return tf.reduce_mean(cov / norm)

    class Distiller(k.Model):
        def __init__(self):
            super().__init__(name=f"{student.name}_distiller")
            self.student, self.teacher = student, teacher

        def call(self, inputs, training=False):
            return self.student(inputs, training=training)

        def train_step(self, data):
            images, labels, sample_weight = k.utils.unpack_x_y_sample_weight(data)
            soft = self.teacher(images, training=False)
            soft_probs, soft_cam = soft[teacher_index["probs"]], soft[teacher_index["cam"]]
            with tf.GradientTape() as tape:
                out = self.student(images, training=True)
                probs, cam = out[student_index["probs"]], out[student_index["cam"]]
                hard = k.losses.categorical_crossentropy(labels, probs)
                if sample_weight is not None:
                    hard = hard * tf.cast(tf.reshape(sample_weight, [-1]), hard.dtype)
                hard = tf.reduce_mean(hard)
                kd = tf.reduce_mean(k.losses.kl_divergence(soft_probs, tf.clip_by_value(probs, epsilon, 1.0)))
                cam_loss = 1.0 - map_correlation(soft_cam, cam)
                loss = hard + distillation.probs_weight * kd + distillation.cam_weight * cam_loss
                if self.student.losses:
                    loss += tf.add_n(self.student.losses)
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return {"loss": loss, "labels": hard, "probs_kd": kd, "cam": cam_loss}

    teacher.trainable = False
    return Distiller()


def _epoch_line(stage: str, epochs: int):
    """A Keras callback logging one line per epoch (defined here so importing this module stays light)."""
    k = keras()

    class EpochLine(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = time.perf_counter() - self.started
            parts = "".join(f", {key} {float(logs[key]):.4f}" for key in ("labels", "probs_kd", "cam") if key in logs)
            log.info("%s: epoch %d/%d loss %.4f%s (%.0f s)", stage, epoch + 1, epochs, float(logs.get("loss", float("nan"))),
                     parts, seconds)

    return EpochLine()

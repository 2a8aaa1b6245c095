"""Precise BatchNorm: recompute the moving statistics exactly after training, whatever momentum and run length.

BatchNorm normalises with batch statistics in training and with moving averages (momentum 0.99 in
ResNet50) at inference. After a short run the averages still remember the random initial weights:
a few hundred images for 10 epochs from scratch give a model that is good in training mode and near
chance in inference mode. Precise BN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021) replaces
the averages by the population mean and variance of each BatchNormalization layer's input over the
training images, so inference statistics match the weights.

One pass, bounded memory: each batch goes through a probe model (input -> every BN layer's input) in
training mode, so each layer upstream normalises with the batch's own statistics, exactly as when the
weights were trained; per batch only each channel's count, mean and sum of squared deviations are
kept, merged across batches in float64 (Chan's parallel formula, no cancellation). Accumulating under
training-mode normalisation is the reference's choice too: the later layers' weights were fitted to
inputs normalised that way, and it needs one pass instead of one per layer. Use the training batch
size, since the upstream normalisation depends on it. The variance is the biased one, which is what
Keras normalises with in training.

Only trainable BN layers are updated: a frozen BN layer (`trainable=False`, the fine-tuning phases of
pretrained models) ran in inference mode during training, its statistics are what the weights saw,
and it stays as it is. The probe stops at the BN inputs, so the head's dropout is never in it; a
dropout or noise layer upstream of a BN layer would add training-mode noise to the statistics and is
refused. Pass the training images without augmentation: they are what inference will see.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from medtk.errors import ConfigError, ModelError
from medtk.train.tfenv import keras, tensorflow


_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (BN layer names, step)

@dataclass(frozen=True)
class PreciseBatchNorm:
    """What the pass did: BN layers recomputed, frozen ones left alone, images and batches used."""

    layers_updated: int
    layers_frozen: int
    images: int
    batches: int


def precise_batchnorm(model, images: np.ndarray | Iterable, batch_size: int = 32, seed: int = 0) -> PreciseBatchNorm:
    """Set every trainable BatchNormalization layer's moving mean/variance to its input's population statistics.

    `images`: raw-pixel training images (N, S, S, C), shuffled with `seed` and cut into batches of
    `batch_size`; or an iterable of batches (arrays, or tuples whose first item is the images, as a
    tf.data dataset of (x, y) yields), used as given.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras().layers.BatchNormalization)]
    updated = [layer for layer in norms if layer.trainable]
    if not updated:
        return PreciseBatchNorm(layers_updated=0, layers_frozen=len(norms), images=0, batches=0)
    step = _cached_step(model, updated)
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in updated]
    totals: list[tuple[float, np.ndarray, np.ndarray] | None] = [None] * len(updated)
    seen = batches = 0
    try:  # training-mode calls move the averages as a side effect; on failure they are put back
        for batch in _batches(images, batch_size, seed):
            for index, (count, mean, m2) in enumerate(step(batch)):
                totals[index] = _merge(totals[index], float(count), mean.numpy(), m2.numpy())
            seen += int(batch.shape[0])
            batches += 1
        if not batches:
            raise ConfigError("precise BatchNorm needs training images, got none")
    except BaseException:
        for layer, (mean, variance) in zip(updated, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        raise
    for layer, (count, mean, m2) in zip(updated, totals):
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype.as_numpy_dtype))
        layer.moving_variance.assign((m2 / count).astype(layer.moving_variance.dtype.as_numpy_dtype))
    return PreciseBatchNorm(layers_updated=len(updated), layers_frozen=len(norms) - len(updated),
                            images=seen, batches=batches)


def _cached_step(model, updated: list):
    """The probe model and its compiled step, built once per model and set of trained BN layers (the
    pass also runs before every validation while BatchNorm trains; rebuilding would retrace each time)."""
    key = tuple(layer.name for layer in updated)
    cached = _STEPS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    probe = keras().Model(model.inputs, [layer.input for layer in updated], name=f"{model.name}_bn_inputs")
    _refuse_noise(probe)
    step = _moments_step(probe, [_channel_axis(layer) for layer in updated])
    _STEPS[model] = (key, step)
    return step


def _moments_step(probe, axes: list[tuple[int, ...]]):
    """A compiled function: one batch -> per BN input (element count per channel, mean, sum of squared deviations)."""
    tf = tensorflow()

    @tf.function(reduce_retracing=True)
    def step(batch):
        inputs = probe(batch, training=True)
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        out = []
        for value, axis in zip(inputs, axes):
            value = tf.cast(value, tf.float32)
            mean = tf.reduce_mean(value, axis=axis, keepdims=True)
            m2 = tf.reduce_sum(tf.square(value - mean), axis=axis)
            count = tf.cast(tf.size(value), tf.float32) / tf.cast(tf.size(m2), tf.float32)
            out.append((count, tf.reshape(mean, tf.shape(m2)), m2))
        return out

    return step


def _merge(total, count: float, mean: np.ndarray, m2: np.ndarray):
    """Chan et al.'s pairwise update of (count, mean, sum of squared deviations), in float64."""
    mean, m2 = mean.astype(np.float64), m2.astype(np.float64)
    if total is None:
        return count, mean, m2
    n, old_mean, old_m2 = total
    joined = n + count
    delta = mean - old_mean
    return joined, old_mean + delta * (count / joined), old_m2 + m2 + delta**2 * (n * count / joined)


def _channel_axis(layer) -> tuple[int, ...]:
    """The axes BN reduces over: all but its (single) feature axis."""
    axis = list(layer.axis) if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(layer.input_shape)
    if len(axis) != 1:
        raise ModelError(f"precise BatchNorm: layer {layer.name!r} normalises over axes {axis}; "
                         "only one feature axis is supported")
    feature = axis[0] % rank
    return tuple(i for i in range(rank) if i != feature)


def _refuse_noise(probe) -> None:
    k = keras()
    noisy = (k.layers.Dropout, k.layers.GaussianNoise, k.layers.GaussianDropout, k.layers.AlphaDropout)
    for layer in probe.layers:
        if isinstance(layer, noisy):
            raise ModelError(
                f"precise BatchNorm: {type(layer).__name__} layer {layer.name!r} feeds a BatchNormalization layer; "
                "its training-mode noise would enter the statistics"
            )


def _batches(images, batch_size: int, seed: int):
    tf = tensorflow()
    if isinstance(images, np.ndarray):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"precise BatchNorm batch size must be an integer >= 1, got {batch_size!r}")
        order = np.random.default_rng(seed).permutation(len(images))
        for start in range(0, len(images), batch_size):
            yield tf.convert_to_tensor(images[order[start:start + batch_size]], dtype=tf.float32)
        return
    for item in images:
        batch = item[0] if isinstance(item, (tuple, list)) else item
        yield tf.cast(batch, tf.float32)

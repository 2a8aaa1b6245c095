"""Input pipeline: decode each image once (in parallel), then tf.data batches, augments and prefetches.

Decoding runs in a thread pool (OpenCV and pydicom release the GIL for the heavy part) through the
shared `medtk.runtime.imaging` preprocessing, so training sees exactly what the device will see; the
prepared uint8 pixels stay in memory (224x224x3 is 150 kB an image), which is tf.data's `cache()`
without decoding twice. Augmentation runs per batch in the tf.data graph with Keras' random layers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from medtk.config import AugmentConfig
from medtk.data.base import Split
from medtk.progress import track
from medtk.runtime.imaging import prepare_input
from medtk.train.tfenv import keras, tensorflow


def prepare_split(split: Split, size: int, channels: int, threads: int | None = None) -> np.ndarray:
    """All images of a split as raw-pixel model input, uint8 (N, size, size, channels)."""
    out = np.empty((len(split), size, size, channels), dtype=np.uint8)

    def work(index: int) -> None:
        out[index] = prepare_input(split.load(index), size, channels)

    with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1)) as pool:
        for _ in track(pool.map(work, range(len(split))), len(split), f"decoding {len(split)} images at {size} px"):
            pass
    return out


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def augmentation(config: AugmentConfig, seed: int = 0):
    """The configured random transforms as one Keras model (None when augmentation is off)."""
    if not config.enabled:
        return None
    k = keras()
    layers = []
    flip = {(True, True): "horizontal_and_vertical", (True, False): "horizontal", (False, True): "vertical"}
    mode = flip.get((config.horizontal_flip, config.vertical_flip))
    if mode:
        layers.append(k.layers.RandomFlip(mode, seed=seed))
    if config.rotation_degrees:
        layers.append(k.layers.RandomRotation(config.rotation_degrees / 360.0, fill_mode=config.fill_mode, seed=seed))
    if config.width_shift or config.height_shift:
        layers.append(
            k.layers.RandomTranslation(config.height_shift, config.width_shift, fill_mode=config.fill_mode, seed=seed)
        )
    return k.Sequential(layers, name="augment") if layers else None


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 0,
):
    """(float32 raw pixels, one-hot labels) batches; shuffled and augmented when `training`."""
    tf = tensorflow()
    dataset = tf.data.Dataset.from_tensor_slices((images, one_hot(labels, num_classes)))
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    transform = augmentation(augment, seed) if (training and augment is not None) else None
    if transform is not None:
        dataset = dataset.map(lambda x, y: (transform(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)

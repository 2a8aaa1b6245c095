"""Training from a prepared dataset: tf.data streams its TFRecord shards, memory bounded by the buffers.

`tf_dataset` reads the shards natively (`TFRecordDataset`; training interleaves a few shards in a
per-epoch shuffled order and shuffles within a buffer of bounded bytes; the shards themselves hold a
seeded shuffle), parses the `tf.train.Example`s, batches, augments exactly as the in-memory pipeline
does and prefetches. Under MultiWorkerMirroredStrategy training auto-shards by FILE (each worker reads
its own shards) when there are at least as many shards as workers, else by DATA; the training stream then
repeats and `fit` takes `steps_per_epoch` steps (`epoch_steps`): workers holding unequal shares of the
shards must still take the same steps (a worker that ran out failed the step, seen with 2 workers and 36
images in 5-image shards). Validation and the other passes shard by DATA: every worker reads every shard
and keeps its share of the batches, which TensorFlow balances.

`choose_pipeline` decides between this and the in-memory path (`pipeline.prepare_split` +
`make_dataset`): training streams when its training and validation images would not fit comfortably in
the memory this process may use, or when asked. A folder or CSV source is first decoded once into the run
folder (`prepare_in_run`: `RUN/prepared`), which training, either way, and every later stage then read.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from medtk.config import AugmentConfig, RunConfig
from medtk.data.base import Dataset
from medtk.data.prepared import PreparedDataset
from medtk.data.staging import DecodedStage
from medtk.errors import ConfigError
from medtk.train.memory import usable_memory
from medtk.train.pipeline import augmentation
from medtk.train.tfenv import tensorflow

log = logging.getLogger(__name__)

SHUFFLE_BYTES = 256 * 1024 * 1024  # the training shuffle buffer's bound in bytes of prepared images
CYCLE_LENGTH = 4  # training shards read at once
MEMORY_SHARE = 0.5  # in-memory training may take at most this share of the usable memory
COPIES_IN_MEMORY = 2  # the in-memory path holds the numpy arrays and TensorFlow's copy of them


@dataclass(frozen=True)
class PipelineChoice:
    """How training reads its images, and why (logged, and saved in training.json)."""

    mode: str  # "memory" or "stream"
    reason: str


def tf_dataset(prepared: PreparedDataset, split: str, *, num_classes: int, batch_size: int, training: bool,
               augment: AugmentConfig | None = None, seed: int = 0, workers: int = 1):
    """(float32 raw pixels, one-hot labels) batches of `split`; shuffled and augmented when `training`.

    Not training: records in the order written (the order of `prepared.items(split)` and of the split
    as loaded by `medtk.data.load_dataset`), so predictions line up with the labels.
    """
    tf = tensorflow()
    preprocessing = prepared.manifest.preprocessing
    shape = (preprocessing.input_size, preprocessing.input_size, preprocessing.channels)
    files = [str(path) for path in prepared.shard_paths(split)]
    features = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), shape)
        return image, tf.one_hot(example["label"], num_classes, dtype=tf.float32)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        if workers > 1:
            dataset = dataset.repeat()  # every worker takes `epoch_steps` steps, whatever its share of shards
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(CYCLE_LENGTH, len(files)),
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        dataset = dataset.flat_map(tf.data.TFRecordDataset)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        image_bytes = shape[0] * shape[1] * shape[2]
        buffer = max(1, min(prepared.count(split), SHUFFLE_BYTES // image_bytes))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    transform = augmentation(augment, seed) if (training and augment is not None) else None
    if transform is not None:
        dataset = dataset.map(lambda x, y: (transform(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    by_file = training and len(files) >= workers
    options.experimental_distribute.auto_shard_policy = policy.FILE if by_file else policy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def epoch_steps(images: int, global_batch: int, workers: int) -> int | None:
    """`fit`'s steps_per_epoch for the training stream: one pass's worth under several workers (whose
    stream repeats), None (to the end of the data) for one."""
    return -(-images // global_batch) if workers > 1 else None


def choose_pipeline(config: RunConfig, prepared: PreparedDataset | None, channels: int,
                    images: int | None = None) -> PipelineChoice:
    """Memory or stream, by `train.input_pipeline` (auto, memory, stream) and the size of `images` training
    + validation images (None: the prepared dataset's). `prepared` None: an in-memory source (an `.npz`,
    synthetic data); a run's own `RUN/prepared` holds just its split, subset included."""
    wanted = config.train.input_pipeline
    if prepared is not None:
        check_matches(prepared, config.model.input_size, channels)
        if config.data.subset and Path(config.data.src) == prepared.root:
            if wanted == "stream":
                raise ConfigError("train.input_pipeline = stream reads whole shards; it cannot take data.subset "
                                  f"({config.data.subset}) of a prepared dataset")
            return PipelineChoice("memory", f"data.subset = {config.data.subset} picks items from the shards")
    elif images is None:
        raise ValueError("a raw source's pipeline is chosen by its number of images")
    if wanted != "auto":
        return PipelineChoice(wanted, f"train.input_pipeline = {wanted}")
    if images is None:
        images = prepared.count("train") + _count(prepared, "val")
    needed = COPIES_IN_MEMORY * config.model.input_size ** 2 * channels * images
    budget = int(usable_memory() * MEMORY_SHARE)
    if needed <= budget:
        return PipelineChoice("memory", f"train + val need {needed / 2**20:.0f} MiB in memory, within "
                                        f"{budget / 2**20:.0f} MiB ({MEMORY_SHARE:.0%} of the usable memory)")
    return PipelineChoice("stream", f"train + val would need {needed / 2**20:.0f} MiB in memory, more than "
                                    f"{budget / 2**20:.0f} MiB ({MEMORY_SHARE:.0%} of the usable memory)")


def prepare_in_run(run_prepared: Path, dataset: Dataset, input_size: int, channels: int, seed: int,
                   decoded: DecodedStage | None = None) -> PreparedDataset:
    """A folder or CSV source is decoded once into the run folder (`run_prepared`), split as the run is.

    Resumable like `medtk prepare`: `medtk train --resume` after an interruption keeps the finished shards
    (the run's saved split gives the same items). eval, compress, explain and report of the run read these
    shards too (`Run.dataset`) instead of decoding the source again.
    """
    from medtk.data.prepared import open_prepared, prepare_dataset

    log.info("decoding %s once into %s (model input at %d px, %d channel(s)); the run's stages read it",
             dataset.source, run_prepared, input_size, channels)
    prepare_dataset(dataset, run_prepared, input_size, channels, seed=seed, decoded=decoded)
    return open_prepared(run_prepared)


def check_matches(prepared: PreparedDataset, input_size: int, channels: int) -> None:
    """A prepared dataset is model input at one size and resize rule: resizing it again, or exporting a model
    the device feeds by another rule than its training images were made with, would train on other pixels."""
    from medtk.runtime.imaging import INTERPOLATION_RULE

    made = prepared.manifest.preprocessing
    if (made.input_size, made.channels) != (input_size, channels):
        raise ConfigError(f"{prepared.root}: prepared at {made.input_size} px, {made.channels} channel(s); the model "
                          f"takes {input_size} px, {channels} channel(s): pass --input-size {made.input_size}"
                          f"{'' if channels == made.channels else f' and channels {made.channels}'} or prepare again")
    if made.interpolation != INTERPOLATION_RULE:
        raise ConfigError(f"{prepared.root}: resized by {made.interpolation!r}; this medtk's models are fed by "
                          f"{INTERPOLATION_RULE!r} on the device: run `medtk prepare` again with --overwrite")


def manifest_digest(prepared: PreparedDataset) -> str:
    """sha256 of manifest.json as it is on disk: names the exact prepared dataset a run trained on."""
    return hashlib.sha256((prepared.root / "manifest.json").read_bytes()).hexdigest()


def _count(prepared: PreparedDataset, split: str) -> int:
    return prepared.count(split) if split in prepared.manifest.layout.shards else 0

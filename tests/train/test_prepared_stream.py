"""Training's side of a prepared dataset: the tf.data stream, the memory-or-stream choice, train end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medtk.config import load_config
from medtk.data import load_dataset
from medtk.data.prepared import open_prepared, prepare_dataset
from medtk.errors import ConfigError
from medtk.train.prepared import choose_pipeline, tf_dataset

SIZE = 32


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "ds"
    prepare_dataset(load_dataset("synthetic:60"), out, SIZE, 1, shard_bytes=SIZE * SIZE * 5)
    return open_prepared(out)


def _batches(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(images), np.concatenate(labels)


def test_the_tf_stream_reads_what_the_tf_free_reader_reads_in_order(prepared):
    images, labels = _batches(tf_dataset(prepared, "val", num_classes=2, batch_size=4, training=False))
    items = list(prepared.items("val"))
    assert images.dtype == np.float32 and images.shape == (len(items), SIZE, SIZE, 1)
    assert np.array_equal(images, np.stack([item.image for item in items]).astype(np.float32))
    assert np.array_equal(labels.argmax(axis=1), [item.label for item in items])


def test_the_training_stream_is_one_shuffled_pass_over_every_item(prepared):
    stream = tf_dataset(prepared, "train", num_classes=2, batch_size=8, training=True, seed=1)
    images, labels = _batches(stream)
    items = list(prepared.items("train"))
    key = lambda pixels, label: (pixels.astype(np.uint8).tobytes(), int(label))  # noqa: E731
    assert sorted(key(x, y.argmax()) for x, y in zip(images, labels)) == sorted(key(i.image, i.label) for i in items)
    assert not np.array_equal(images, np.stack([item.image for item in items]).astype(np.float32))
    import tensorflow as tf

    policy = stream.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.FILE  # each worker its own shards
    few = tf_dataset(prepared, "val", num_classes=2, batch_size=8, training=False, workers=16)
    assert few.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_the_pipeline_choice_is_automatic_and_refuses_what_it_cannot_do(prepared, monkeypatch):
    import medtk.train.prepared as streaming

    config = load_config(None, {"data": {"src": str(prepared.root)}, "model": {"input_size": SIZE}})
    assert choose_pipeline(config, prepared, 1).mode == "memory"  # 60 small images fit
    needed = 2 * SIZE * SIZE * (prepared.count("train") + prepared.count("val"))
    monkeypatch.setattr(streaming, "usable_memory", lambda: needed)  # half of it is the in-memory budget
    choice = choose_pipeline(config, prepared, 1)
    assert choice.mode == "stream" and "more than 0 MiB" in choice.reason
    monkeypatch.setattr(streaming, "usable_memory", lambda: 2 * needed)
    assert choose_pipeline(config, prepared, 1).mode == "memory"
    config.train.input_pipeline = "stream"
    assert choose_pipeline(config, prepared, 1).mode == "stream"
    config.data.subset = 5
    with pytest.raises(ConfigError, match="cannot take data.subset"):
        choose_pipeline(config, prepared, 1)
    raw = load_config(None, {"data": {"src": "synthetic:60"}, "train": {"input_pipeline": "stream"}})
    with pytest.raises(ConfigError, match="stream needs a prepared dataset"):
        choose_pipeline(raw, None, 1)
    other = load_config(None, {"data": {"src": str(prepared.root)}, "model": {"input_size": 64}})
    with pytest.raises(ConfigError, match="prepared at 32 px, 1 channel.*pass --input-size 32"):
        choose_pipeline(other, prepared, 1)


def test_a_prepared_dataset_resized_by_another_rule_is_refused(prepared, tmp_path):
    """Made before the exact resize rule: its images are not what the exported model will be fed."""
    from dataclasses import replace

    older = replace(prepared, manifest=replace(prepared.manifest, preprocessing=replace(
        prepared.manifest.preprocessing, interpolation="area-down/linear-up")))
    config = load_config(None, {"data": {"src": str(prepared.root)}, "model": {"input_size": SIZE}})
    with pytest.raises(ConfigError, match="resized by 'area-down/linear-up'.*run `medtk prepare` again"):
        choose_pipeline(config, older, 1)


def test_a_prepared_dataset_of_another_size_is_refused_before_the_run_folder_exists(prepared, tmp_path):
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "medtk", "train", "--data", str(prepared.root), "--out", str(run),
                             "--input-size", "64"], capture_output=True, text=True)
    assert result.returncode == 2 and "prepared at 32 px" in result.stderr and not run.exists()


@pytest.mark.slow
def test_train_streams_a_prepared_dataset_end_to_end_and_eval_reads_it_again(prepared, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(prepared.root), "--out", str(run), "--arch", "mobilenetv2", "--input-size",
            str(SIZE), "--batch-size", "16", "--epochs", "1", "--input-pipeline", "stream", "--seed", "3"]
    result = subprocess.run([sys.executable, "-m", "medtk", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "input pipeline: stream" in result.stderr
    training = json.loads((run / "training.json").read_text())
    assert training["input"]["pipeline"] == "stream" and training["input"]["prepared"] == str(prepared.root)
    assert len(training["input"]["manifest_sha256"]) == 64
    assert training["precise_batchnorm"]["images"] == prepared.count("train")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val"]["n"] == prepared.count("val") and metrics["test"]["n"] == prepared.count("test")
    for name in ("model.keras", "split.csv", "data.json", "history.csv", "plots/roc_test.png"):
        assert (run / name).is_file(), name
    from medtk.run import Run
    from medtk.train.evaluate import evaluate_run

    again = evaluate_run(Run(run))  # the run's own split, read back from the shards (no decoding)
    assert again.test.auc == pytest.approx(metrics["test"]["auc"], abs=1e-6)


def test_the_tf_free_writer_writes_what_tensorflow_writes(prepared, tmp_path):
    import tensorflow as tf

    from medtk.data.prepared.example import encode
    from medtk.data.prepared.tfrecord import write_record

    records = [encode(item) for item in prepared.items("test")]
    ours = tmp_path / "ours.tfrecord"
    with open(ours, "wb") as stream:
        for record in records:
            write_record(stream, record)
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert ours.read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
    parsed = tf.train.Example.FromString(records[0])  # TensorFlow's own generated message class
    assert parsed.SerializeToString(deterministic=True) == records[0]

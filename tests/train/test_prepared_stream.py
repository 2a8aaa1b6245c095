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
    raw = load_config(None, {"data": {"src": "synthetic:60"}, "model": {"input_size": SIZE}})
    monkeypatch.setattr(streaming, "usable_memory", lambda: needed)
    assert choose_pipeline(raw, None, 1, images=prepared.count("train") + prepared.count("val")).mode == "stream"
    assert choose_pipeline(raw, None, 1, images=10).mode == "memory"  # a raw source is judged by its own size
    raw.train.input_pipeline = "stream"
    assert choose_pipeline(raw, None, 1, images=10).mode == "stream"  # then prepared into the run folder
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


_WORKER = """
import hashlib, json, os, sys
from medtk.data.prepared import open_prepared
from medtk.train.prepared import epoch_steps, tf_dataset
from medtk.train.strategy import choose_placement, worker_count
placement = choose_placement("auto", "off", "off")  # TF_CONFIG names two workers: multi-worker
strategy, prepared = placement.strategy, open_prepared(sys.argv[1])
dataset = tf_dataset(prepared, "train", num_classes=2, batch_size=4, training=True, workers=worker_count())
steps = epoch_steps(prepared.count("train"), 4, worker_count())
seen = []
for _, (images, _) in zip(range(2 * steps), strategy.experimental_distribute_dataset(dataset)):  # two epochs
    for local in strategy.experimental_local_results(images):
        seen += [hashlib.sha256(image.numpy().astype("uint8").tobytes()).hexdigest() for image in local]
print(json.dumps({"strategy": placement.strategy_name, "replicas": placement.replicas, "steps": steps,
                  "seen": seen}))
"""


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_two_real_workers_each_stream_their_own_shards_in_the_same_number_of_steps(prepared):
    """MultiWorkerMirroredStrategy across two processes on this machine (TF_CONFIG, gRPC on localhost).
    The fixture's shards hold 5 images: the workers' shares differ, their steps may not."""
    import hashlib
    import os

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen([sys.executable, "-c", _WORKER, str(prepared.root)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            process.kill()
    steps = -(-prepared.count("train") // 4)
    assert {(o["strategy"], o["replicas"], o["steps"]) for o in outputs} == {("multiworker", 2, steps)}
    assert [len(o["seen"]) for o in outputs] == [2 * steps * 2] * 2  # the same steps on both, 2 images each
    from medtk.data.prepared.example import decode
    from medtk.data.prepared.tfrecord import read_records

    def images_of(shards) -> set[str]:
        return {hashlib.sha256(decode(record, "").image.tobytes()).hexdigest()
                for shard in shards for record in read_records(shard)}

    files = prepared.shard_paths("train")
    for index, output in enumerate(outputs):  # FILE sharding: worker k reads shards k, k + 2, ... and no other
        assert set(output["seen"]) <= images_of(files[index::2]), index


@pytest.mark.slow
def test_medtk_train_on_two_workers_streams_unequal_shards_to_one_model(prepared, tmp_path):
    """Two `medtk train` processes under one TF_CONFIG: the strategy starts (it must precede TensorFlow's
    runtime), the workers' unequal shares of shards take the same steps, and both end with one model."""
    import os

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        args = ["train", "--data", str(prepared.root), "--out", str(tmp_path / f"run{index}"), "--arch", "mobilenetv2",
                "--input-size", str(SIZE), "--batch-size", "8", "--epochs", "1", "--input-pipeline", "stream"]
        processes.append(subprocess.Popen([sys.executable, "-m", "medtk", *args], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
    try:
        for process in processes:
            _, err = process.communicate(timeout=600)
            assert process.returncode == 0, err[-3000:]
    finally:
        for process in processes:
            process.kill()
    runs = [json.loads((tmp_path / f"run{index}" / "training.json").read_text()) for index in range(2)]
    assert {(r["placement"]["strategy"], r["placement"]["replicas"], r["input"]["pipeline"]) for r in runs} == {
        ("multiworker", 2, "stream")}
    test_auc = [json.loads((tmp_path / f"run{index}" / "metrics.json").read_text())["test"]["auc"] for index in range(2)]
    assert test_auc[0] == test_auc[1]  # the replicas' weights stayed in step


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory) -> Path:
    """synthetic:60 as a raw source: class folders of PNG files."""
    import cv2

    root = tmp_path_factory.mktemp("raw") / "pngs"
    dataset = load_dataset("synthetic:60")
    for name, split in dataset.splits.items():
        for i in range(len(split)):
            folder = root / dataset.class_names[int(split.labels[i])]
            folder.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(folder / f"{name}-{i}.png"), split.image(i))
    return root


@pytest.mark.slow
def test_a_raw_source_that_streams_is_decoded_once_into_the_run_and_every_later_stage_reads_it(png_folder, tmp_path):
    from medtk.run import Run
    from medtk.train.evaluate import evaluate_run

    run = tmp_path / "run"
    args = ["train", "--data", str(png_folder), "--out", str(run), "--arch", "mobilenetv2", "--input-size",
            str(SIZE), "--batch-size", "16", "--epochs", "1", "--input-pipeline", "stream", "--seed", "3"]
    result = subprocess.run([sys.executable, "-m", "medtk", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads((run / "training.json").read_text())
    assert training["input"]["pipeline"] == "stream" and training["input"]["prepared"] == str(run / "prepared")
    shards = open_prepared(run / "prepared")
    assert shards.manifest.source.src == str(png_folder)
    raw = load_dataset(str(png_folder), seed=0, split_file=run / "split.csv")
    read_back = Run(run).dataset()
    assert read_back.source == str(run / "prepared")  # the shards, not the PNG files
    from medtk.runtime.imaging import prepare_input

    for name in ("train", "val", "test"):
        assert sorted(read_back.splits[name].ids) == sorted(raw.splits[name].ids)
        assert shards.count(name) == len(raw.splits[name])
    assert list(read_back.splits["test"].ids) == list(raw.splits["test"].ids)  # evaluation order kept
    assert np.array_equal(read_back.splits["test"].image(0), prepare_input(raw.splits["test"].load(0), SIZE, 1)[:, :, 0])
    metrics = json.loads((run / "metrics.json").read_text())
    assert evaluate_run(Run(run)).test.auc == pytest.approx(metrics["test"]["auc"], abs=1e-6)

    away = png_folder.with_name("pngs-elsewhere")  # a resumed run reads its shards alone: the source may be gone
    png_folder.rename(away)
    try:
        resumed = subprocess.run([sys.executable, "-m", "medtk", "train", "--out", str(run), "--resume"],
                                 capture_output=True, text=True)
    finally:
        away.rename(png_folder)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["test"]["n"] == metrics["test"]["n"]


def test_a_run_interrupted_while_preparing_is_kept_for_resume_not_replaced(tmp_path):
    from medtk.train.workflow import prepare_run_folder

    run = tmp_path / "run"
    (run / "prepared").mkdir(parents=True)
    (run / "config.toml").write_text("")
    with pytest.raises(ConfigError, match="pass --resume"):
        prepare_run_folder(run, resume=False)
    assert (run / "prepared").is_dir()


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

"""The trainer's own record of where its time goes (train/timings.py -> RUN/timings.json)."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.run import Run
from medtk.schema.timings import EpochTimings, HostSummary, Seconds, TrainingTimings
from medtk.train.fit import _precise_batchnorm_before_validation
from medtk.train.tfenv import keras
from medtk.train.timings import TimingRecorder, summary_lines

HOST = HostSummary(cpu_model="test CPU", cpu_flags=("avx2",), logical_cpus=2, usable_cpus=2, cpu_mhz=None,
                   tensorflow="2.21.0", onednn="on", intra_op_threads=0, inter_op_threads=0)


def _tiny_model():
    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1))
    x = k.layers.Conv2D(4, 3)(inputs)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    model = k.Model(inputs, k.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def _fit(run: Run, model, epochs: int, initial_epoch: int = 0, listener=None) -> TimingRecorder:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8, 1)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 24)]
    recorder = TimingRecorder(run, HOST, planned_epochs=epochs, on_epoch=listener)
    first, last = recorder.callbacks("scratch", len(images))
    history = model.fit(images, labels, validation_data=(images, labels), batch_size=8, epochs=epochs,
                        initial_epoch=initial_epoch, verbose=0,
                        callbacks=[first, _precise_batchnorm_before_validation(model, images, 8, 0, recorder), last])
    assert len(history.history["train_seconds"]) == epochs - initial_epoch  # history.csv keeps its column
    return recorder


def test_each_epoch_is_split_into_its_phases_and_written_to_the_run(tmp_path):
    """One model for both checks (the tracing is what costs here): the phases, then a resumed session."""
    run, model = Run(tmp_path), _tiny_model()
    heard = []
    recorder = _fit(run, model, epochs=2, listener=lambda timing, planned: heard.append((timing.epoch, planned)))
    with recorder.after("evaluation"):
        pass
    timings = run.timings()
    assert timings == recorder.timings and timings.host == HOST
    assert [epoch.epoch for epoch in timings.epochs] == [0, 1] and heard == [(0, 2), (1, 2)]
    for epoch in timings.epochs:
        assert epoch.phase == "scratch" and epoch.images == 24
        for part in (epoch.train, epoch.precise_batchnorm, epoch.validation, epoch.checkpointing):
            assert part is not None and part.wall >= 0 and part.cpu >= 0
        assert epoch.total.wall == pytest.approx(sum(p.wall for p in (epoch.train, epoch.precise_batchnorm,
                                                                      epoch.validation, epoch.checkpointing)))
    assert set(timings.phase_totals()) == {"train", "precise_batchnorm", "validation", "checkpointing",
                                           "after: evaluation"}
    lines = summary_lines(timings)
    assert lines[0].startswith("train") and "test CPU" in lines[-1] and "avx2" in lines[-1]

    first_epoch, redone = timings.epochs[0], timings.epochs[1]
    _fit(run, model, epochs=2, initial_epoch=1)  # a resumed session redoes epoch 1 (killed in flight)
    epochs = run.timings().epochs
    assert [epoch.epoch for epoch in epochs] == [0, 1] and epochs[0] == first_epoch and epochs[1] != redone
    assert run.timings().after == timings.after  # what the earlier session measured is kept


def test_timings_round_trip_and_refuse_a_newer_schema(tmp_path):
    timings = TrainingTimings(host=HOST, decode=Seconds(1.5, 2.5), decoded_images=10, epochs=(
        EpochTimings(0, "scratch", 8, Seconds(1, 2), None, Seconds(0.5, 0.5), Seconds(0.1, 0.1)),),
        after={"save": Seconds(0.2, 0.1)})
    assert TrainingTimings.from_json(timings.to_json()) == timings
    from medtk.errors import ModelError

    with pytest.raises(ModelError, match="newer than this medtk reads"):
        TrainingTimings.from_json({**timings.to_json(), "schema": "medtk-timings/2"})

"""The step floor, the validation rules scaled to the split, the small-data warning, and the smoothed
validation AUC surviving a resume (train/schedule.py, fit.py's SmoothedValidation)."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.config import load_config
from medtk.train.schedule import plan_schedule, validation_min_delta

VAL_39 = np.array([0] * 10 + [1] * 29)  # the 300-image benchmark's validation split
VAL_524 = np.array([0] * 135 + [1] * 389)  # PneumoniaMNIST's own


def _config(**train):
    return load_config(None, {"train": train})


def test_the_step_floor_raises_the_epochs_of_a_small_dataset():
    schedule = plan_schedule(_config(), train_images=300, val_labels=VAL_39, num_classes=2, global_batch=32)
    assert schedule.steps_per_epoch == 10
    assert schedule.epochs == 100 and schedule.floor_epochs == 100  # 1000 steps, not 20 epochs of 10
    assert schedule.lr_start_epoch == 25  # no learning-rate cut on the noise of the first 250 steps
    assert schedule.warnings and "too few to train resnet50 from scratch" in schedule.warnings[0]
    assert "--weights imagenet" in schedule.warnings[0] and "--arch mobilenetv2" in schedule.warnings[0]


def test_a_large_dataset_keeps_twenty_epochs_and_may_stop_after_the_floor():
    schedule = plan_schedule(_config(), train_images=4708, val_labels=VAL_524, num_classes=2, global_batch=32)
    assert (schedule.steps_per_epoch, schedule.epochs, schedule.floor_epochs) == (148, 20, 7)
    assert schedule.patience == 5 and schedule.warnings == ()


def test_explicit_epochs_below_the_floor_are_kept_with_a_warning():
    schedule = plan_schedule(_config(epochs=10), train_images=546, val_labels=VAL_39, num_classes=2, global_batch=32)
    assert schedule.epochs == 10  # the run: 546 images, 10 epochs, 180 steps
    assert "180 optimizer steps, below the floor of 1000" in schedule.warnings[0]
    assert plan_schedule(_config(epochs=10, min_steps=0), train_images=546, val_labels=VAL_39, num_classes=2,
                         global_batch=32).warnings == schedule.warnings[1:]  # the floor off: only the data warning


def test_pretrained_weights_do_not_get_the_from_scratch_warning():
    config = load_config(None, {"model": {"weights": "imagenet"}})
    schedule = plan_schedule(config, train_images=300, val_labels=VAL_39, num_classes=2, global_batch=32)
    assert schedule.warnings == () and schedule.epochs == 100


def test_synthetic_phantoms_do_not_get_the_from_scratch_warning():
    config = load_config(None, {"data": {"src": "synthetic:120"}, "train": {"min_steps": 0}})  # the quick demo's
    assert plan_schedule(config, train_images=72, val_labels=VAL_39, num_classes=2, global_batch=16).warnings == ()


def test_min_delta_and_patience_scale_with_the_validation_split_and_the_run():
    small, large = validation_min_delta(VAL_39, 2), validation_min_delta(VAL_524, 2)
    # Hanley-McNeil at AUC 0.9, by hand: variance 0.002423 (29 positives, 10 negatives), 0.004680 (10, 29)
    assert small == pytest.approx(0.5 * ((0.002423 + 0.004680) / 2) ** 0.5, abs=3e-4)
    assert large < small / 3
    assert validation_min_delta(np.array([1] * 20), 2) == 0.0  # a class absent: nothing to scale by
    short = plan_schedule(_config(), train_images=4708, val_labels=VAL_524, num_classes=2, global_batch=32)
    long = plan_schedule(_config(), train_images=300, val_labels=VAL_39, num_classes=2, global_batch=32)
    assert long.patience == 10 > short.patience and long.lr_patience == 5
    assert long.min_delta > short.min_delta


def test_the_plan_log_names_the_floor_and_the_warning(medtk_log):
    from medtk.train.fit import plan_phases
    from medtk.train.strategy import choose_placement
    from medtk.train.workflow import _log_plan

    config = _config()
    schedule = plan_schedule(config, train_images=300, val_labels=VAL_39, num_classes=2, global_batch=32)
    phases = plan_phases(config, "conv5_block1_1_conv", schedule)
    assert [(p.name, p.epochs, p.floor_epochs) for p in phases] == [("scratch", 100, 100)]
    _log_plan(phases, choose_placement("default", "off", "off"), schedule)
    assert "floor 1000 steps per run" in medtk_log.text
    assert "scratch: 100 epochs" in medtk_log.text
    assert any(r.levelname == "WARNING" and "too few to train resnet50" in r.getMessage() for r in medtk_log.records)


def test_the_smoothed_val_auc_is_rebuilt_from_history_on_resume(tmp_path):
    from medtk.train.fit import _smoothed_validation

    history = tmp_path / "history.csv"
    history.write_text("epoch,val_auc\n0,0.9\n1,0.5\n2,0.7\n3,0.99\n")  # epoch 3: written, then killed
    callback = _smoothed_validation(history, phase_start=1, smoothing=0.6)  # this phase started at epoch 1
    callback.on_epoch_begin(3)  # the session resumes at epoch 3, which is redone
    logs = {"val_auc": 0.8}
    callback.on_epoch_end(3, logs)
    expected = 0.6 * (0.6 * 0.5 + 0.4 * 0.7) + 0.4 * 0.8
    assert logs["val_auc_smooth"] == pytest.approx(expected)
    callback.on_epoch_begin(4)  # later epochs continue the average, the file is not read again
    logs = {"val_auc": 0.6}
    callback.on_epoch_end(4, logs)
    assert logs["val_auc_smooth"] == pytest.approx(0.6 * expected + 0.4 * 0.6)


def test_epochs_auto_is_the_default_and_the_command_line_refuses_negative_epochs():
    from medtk.errors import ConfigError

    assert _config().train.epochs == -1 and _config().train.min_steps == 1000
    with pytest.raises(ConfigError, match=r"train.epochs = -2 is out of range"):
        _config(epochs=-2)
    with pytest.raises(ConfigError, match=r"train.val_smoothing = 1.0 is out of range"):
        _config(val_smoothing=1.0)


def test_the_learning_rate_is_not_reduced_before_its_start_epoch():
    from medtk.train.fit import _reduce_lr_on_plateau
    from medtk.train.tfenv import keras

    k = keras()
    model = k.Sequential([k.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=k.optimizers.Adam(learning_rate=1e-3), loss="mse")
    schedule = plan_schedule(_config(), train_images=300, val_labels=VAL_39, num_classes=2, global_batch=32)
    callback = _reduce_lr_on_plateau(schedule, start_from_epoch=25)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(25):  # a lucky first epoch, then nothing better: before the start, no cut
        logs = {"val_auc_smooth": 0.9 if epoch == 0 else 0.7}
        callback.on_epoch_end(epoch, logs)
        assert logs["lr"] == pytest.approx(1e-3)
    for epoch in range(25, 25 + schedule.lr_patience + 1):
        callback.on_epoch_end(epoch, {"val_auc_smooth": 0.7})
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(3e-4)

"""`medtk train` end to end on real data, resume after kill -9, and the multi-replica path."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medtk.cli import app

QUICK = ["--arch", "resnet50", "--input-size", "32", "--batch-size", "32", "--seed", "3"]


def _medtk(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medtk", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.slow
def test_train_on_pneumoniamnist_writes_metrics(tmp_path: Path, pneumonia_npz: Path):
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", "--data", str(pneumonia_npz), "--out", str(run), *QUICK, "--epochs", "2", "--subset", "300"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["class_names"] == ["normal", "pneumonia"]
    for split in ("val", "test"):
        m = metrics[split]
        assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["accuracy"] <= 1.0
        assert {"sensitivity", "specificity", "f1", "confusion_matrix", "per_class"} <= set(m)
        assert sum(map(sum, m["confusion_matrix"])) == m["n"]
    assert metrics["test"]["n"] == 300  # --subset keeps at most 300 per split
    training = json.loads((run / "training.json").read_text())
    assert training["schedule"]["epochs"] == 2 and training["schedule"]["steps_per_epoch"] == 10
    assert "below the floor of 1000" in training["warnings"][0]  # --epochs 2 is kept, with a warning
    assert "too few to train resnet50 from scratch" in training["warnings"][1]
    for name in ("model.keras", "config.toml", "split.csv", "data.json", "history.csv", "plots/roc_test.png",
                 "plots/confusion_val.png", "training.json"):
        assert (run / name).is_file(), name
    assert "test AUC" in result.output
    assert any((run / "logs").rglob("events.out.tfevents.*"))
    from medtk.devices.cpu import read_cpu
    from medtk.run import Run

    timings = Run(run).timings()  # where the time went, written by the trainer (train/timings.py)
    assert [epoch.epoch for epoch in timings.epochs] == [0, 1] and timings.decoded_images == 600
    assert all(epoch.validation and epoch.checkpointing and epoch.images == 300 for epoch in timings.epochs)
    assert all((epoch.precise_batchnorm is not None) == (epoch.phase == "scratch") for epoch in timings.epochs)
    assert set(timings.after) == {"precise_batchnorm", "calibration", "save", "evaluation"}
    assert timings.host.cpu_flags == read_cpu().flags and timings.host.choices
    assert "where the time went (timings.json):" in result.output
    # eval again from the saved run reproduces the same test metrics (same split, same weights)
    again = CliRunner().invoke(app, ["eval", str(run), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["test"]["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-6)


def _history_epochs(path: Path) -> list[int]:
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _smoothing_is_continuous(path: Path, smoothing: float = 0.6) -> None:
    """Every row's val_auc_smooth is the moving average of the val_auc rows before it: a resumed session
    continued the average instead of restarting it."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    average = None
    for row in rows:
        value = float(row["val_auc"])
        average = value if average is None else smoothing * average + (1 - smoothing) * value
        assert float(row["val_auc_smooth"]) == pytest.approx(average, abs=1e-5), row["epoch"]


@pytest.mark.slow
def test_resume_after_kill_continues_where_it_stopped(tmp_path: Path):
    run = tmp_path / "run"
    args = ["train", "--data", "synthetic:240", "--out", str(run), *QUICK, "--epochs", "6", "--patience", "10"]
    process = subprocess.Popen([sys.executable, "-m", "medtk", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    state = run / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state.is_file() and json.loads(state.read_text())["epochs"] >= 2:
            break
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert state.is_file(), "training never reached its second epoch"
    done_before = _history_epochs(run / "history.csv")
    assert len(done_before) >= 2 and not (run / "model.keras").exists()

    again = _medtk(*args, "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    epochs = _history_epochs(run / "history.csv")
    resumed = epochs[len(done_before):]
    assert resumed[0] >= len(done_before) - 1  # continued (at most the epoch in flight is redone)
    assert sorted(set(epochs)) == list(range(max(epochs) + 1))
    _smoothing_is_continuous(run / "history.csv")
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
    timed = [json.loads((run / "timings.json").read_text())["epochs"][i]["epoch"] for i in range(max(epochs) + 1)]
    assert timed == list(range(max(epochs) + 1))  # each epoch once, the redone one replaced


def test_existing_run_folder_is_not_overwritten(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    result = _medtk("train", "--data", "synthetic", "--out", str(run))
    assert result.returncode == 2
    assert "folder exists and is not empty; pass --resume" in result.stderr
    assert "Traceback" not in result.stderr
    missing = _medtk("train", "--out", str(tmp_path / "new"), "--resume")
    assert missing.returncode == 2 and "holds no interrupted run" in missing.stderr


_STRATEGY_SCRIPT = """
import sys
from medtk.train.tfenv import tensorflow
tf = tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from medtk.cli import main
sys.argv = ["medtk"] + sys.argv[1:]
main()
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path: Path):
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", _STRATEGY_SCRIPT, "train", "--data", "synthetic:120", "--out", str(run), *QUICK,
         "--epochs", "1", "--strategy", "mirrored"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    placement = json.loads((run / "training.json").read_text())["placement"]
    assert placement["strategy"] == "mirrored" and placement["replicas"] == 2
    assert len(placement["devices"]) == 2
    assert json.loads((run / "metrics.json").read_text())["test"]["n"] > 0


@pytest.mark.slow
def test_kill_at_the_end_of_a_phase_does_not_redo_it(tmp_path: Path):
    """The phase is recorded before its backup is deleted: a kill in between must not rerun it."""
    run = tmp_path / "run"
    args = ["train", "--data", "synthetic:160", "--out", str(run), "--arch", "mobilenetv2", "--input-size", "32",
            "--batch-size", "32", "--epochs", "3", "--patience", "10"]
    process = subprocess.Popen([sys.executable, "-m", "medtk", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    state = run / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        try:
            if "scratch" in json.loads(state.read_text())["done"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if not (run / "model.keras").exists():
        again = _medtk(*args, "--resume")
        assert again.returncode == 0, again.stderr[-2000:]
    assert _history_epochs(run / "history.csv") == [0, 1, 2]
    assert json.loads(state.read_text())["epochs"] == 3


def test_bad_options_create_nothing(tmp_path: Path):
    run = tmp_path / "run"
    for bad in (["--input-size", "0"], ["--input-size", "100000"], ["--epochs", "-1"], ["--epochs", "0"],
                ["--lr", "nan"], ["--arch", "resnet5"], ["--weights", str(tmp_path / "missing.h5")],
                ["--operating-point", "sensitivity:2"]):
        result = _medtk("train", "--data", "synthetic:40", "--out", str(run), *bad)
        assert result.returncode == 2, (bad, result.stderr[-500:])
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not run.exists(), bad


@pytest.mark.slow
def test_a_run_that_never_finished_an_epoch_is_replaced_without_force(tmp_path: Path):
    from medtk.config import load_config, save_config

    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(None, {"data": {"src": "synthetic:40"}}), run / "config.toml")  # crashed while decoding
    result = _medtk("train", "--data", "synthetic:80", "--out", str(run), "--arch", "mobilenetv2",
                    "--input-size", "32", "--epochs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "model.keras").is_file()
    again = _medtk("train", "--data", "synthetic:80", "--out", str(run))  # a finished run is never replaced
    assert again.returncode == 2 and "folder exists and is not empty" in again.stderr

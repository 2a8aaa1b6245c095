"""One small trained run (real `medtk train`) and one compressed copy of it, shared by every test.

ResNet50 at 64 px on `synthetic:400` for three epochs: small enough to train in about a minute, and
(unlike MobileNetV2 trained from scratch for a few dozen steps, whose BatchNorm statistics leave it
predicting a constant) its outputs depend on the image, so AUCs, deltas and CAMs mean something. At
64 px the CAM is 2x2 cells, so peak agreement is not trivially 1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

TRAIN = {
    "data": {"src": "synthetic:400", "seed": 1},
    "model": {"arch": "resnet50", "input_size": 64, "weights": "none"},
    "augment": {"enabled": False},
    "train": {"epochs": 3, "batch_size": 32, "seed": 1},
}
# The full path (prune + prune-preserving QAT, distilled) with short fine-tuning, gated at 0 so the gate
# fires; the CAM gate is off here so the AUC gate's failures are exactly the variants that lost AUC (the
# CAM gate has its own tests). Accuracy control with a zero budget and at most two float ops: int8_mixed
# is exported whenever full int8 loses any validation AUC.
COMPRESS = ["--int8", "--prune-epochs", "1", "--qat-epochs", "1", "--calibration", "50", "--max-auc-drop", "0",
            "--min-cam-correlation", "-1", "--max-val-drop", "0", "--max-float-layers", "2"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    from medtk.config import load_config
    from medtk.train.workflow import train

    out = tmp_path_factory.mktemp("compress") / "run"
    train(load_config(None, TRAIN), out)
    return out


@pytest.fixture(scope="session")
def compressed(trained_run: Path, tmp_path_factory):
    """(run folder, CliRunner result) of `medtk compress RUN` + COMPRESS on a copy of the trained run."""
    from medtk.cli import app

    run = tmp_path_factory.mktemp("compressed") / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    result = CliRunner().invoke(app, ["compress", str(run), *COMPRESS])
    return run, result

"""checkpoints/state.json has one owner (train/state.py): fit writes it, the workflow reads it back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from medtk.run import Run
from medtk.train.state import TrainingState
from medtk.train.workflow import _abandoned


def test_a_run_without_the_file_starts_fresh(tmp_path: Path):
    state = TrainingState.load(Run(tmp_path))
    assert (state.done, state.best, state.epochs) == ([], -math.inf, 0)
    assert state.path == tmp_path / "checkpoints" / "state.json"


def test_saved_state_reads_back_with_the_same_keys(tmp_path: Path):
    run = Run(tmp_path)
    run.checkpoints.mkdir()
    state = TrainingState.load(run)
    state.done.append("head")
    state.best, state.epochs = 0.87, 3
    state.save()
    assert json.loads(state.path.read_text()) == {"done": ["head"], "best": 0.87, "epochs": 3}
    again = TrainingState.load(run)
    assert (again.done, again.best, again.epochs) == (["head"], 0.87, 3)


def test_a_corrupt_file_is_an_error_not_a_fresh_start(tmp_path: Path):
    run = Run(tmp_path)
    run.checkpoints.mkdir()
    (run.checkpoints / "state.json").write_text("{not json")
    with pytest.raises(ValueError):
        TrainingState.load(run)


@pytest.mark.parametrize("content, abandoned", [
    (None, True),  # never reached the end of an epoch
    ('{"done": [], "best": 0.5, "epochs": 0}', True),
    ('{"done": [], "best": 0.5, "epochs": 2}', False),
    ("{not json", False),  # unreadable: kept, never deleted
    ("[1, 2]", False),
])
def test_only_a_run_without_a_finished_epoch_counts_as_abandoned(tmp_path: Path, content, abandoned):
    run = Run(tmp_path)
    run.config_file.write_text("")
    if content is not None:
        run.checkpoints.mkdir()
        (run.checkpoints / "state.json").write_text(content)
    assert _abandoned(run) is abandoned

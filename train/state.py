"""RUN/checkpoints/state.json: what survives a hard kill besides Keras' own backups.

The finished phases, the best validation AUC so far (so a restarted session never overwrites the best
checkpoint with a worse one) and the epochs finished. `fit.py` updates it as training goes; the
workflow reads it to tell an abandoned run folder (no finished epoch) from one worth keeping.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from medtk.io import atomic_write_json
from medtk.run import Run

FILE_NAME = "state.json"  # in RUN/checkpoints/


@dataclass
class TrainingState:
    path: Path
    done: list[str] = field(default_factory=list)  # phases finished, by name
    best: float = -math.inf  # the best monitored value (validation AUC) across sessions
    epochs: int = 0  # epochs finished (an epoch redone after a kill counts once)

    @classmethod
    def load(cls, run: Run) -> TrainingState:
        """The run's state; a fresh one when the file does not exist (a corrupt file raises ValueError)."""
        path = run.checkpoints / FILE_NAME
        data = json.loads(path.read_text()) if path.is_file() else {}
        return cls(path, done=data.get("done", []), best=data.get("best", -math.inf), epochs=data.get("epochs", 0))

    def save(self) -> None:
        atomic_write_json(self.path, {"done": self.done, "best": self.best, "epochs": self.epochs})

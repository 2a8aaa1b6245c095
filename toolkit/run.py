"""The run folder: one place that names every artifact a stage reads or writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtk.errors import ModelError


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def split(self) -> Path:
        return self.root / "split.csv"

    @property
    def data_summary(self) -> Path:
        return self.root / "data.json"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def training_summary(self) -> Path:
        return self.root / "training.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def compress(self) -> Path:
        return self.root / "compress.json"

    @property
    def bench(self) -> Path:
        return self.root / "bench.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def require_model(self) -> Path:
        if not self.root.is_dir():
            raise ModelError(f"{self.root}: no such run folder")
        if not self.model.is_file():
            raise ModelError(f"{self.root}: no trained model ({self.model.name} missing; run `medtk train` first)")
        return self.model

    def read_json(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ModelError(f"{path}: not valid JSON ({error})") from None

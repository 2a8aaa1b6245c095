"""What the report reads from a run folder, each file optional: a stage that did not run is `None`.

Only `model.keras`-independent files are read (the report needs no TensorFlow). Bench results come
from `RUN/bench.json` and any `RUN/bench-<device>.json`, one device profile each.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtk.errors import ModelError
from medtk.run import RunPaths


@dataclass(frozen=True)
class RunArtifacts:
    run: RunPaths
    config: dict[str, Any] | None
    data: dict[str, Any] | None
    metrics: dict[str, Any] | None
    training: dict[str, Any] | None
    compress: dict[str, Any] | None
    bench: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (file name, report)

    @property
    def class_names(self) -> list[str]:
        for source in (self.data or {}, self.metrics or {}):
            names = source.get("classes") or source.get("class_names")
            if names:
                return [str(name) for name in names]
        return []

    @property
    def data_source(self) -> str | None:
        if self.data and self.data.get("source"):
            return str(self.data["source"])
        return ((self.config or {}).get("data") or {}).get("src")

    def export_path(self, variant: str) -> Path | None:
        """The exported file of `variant` if compress.json lists it and it is on disk."""
        for entry in (self.compress or {}).get("variants", []):
            if entry.get("name") == variant:
                path = self.run.root / entry.get("path", f"export/{variant}.tflite")
                return path if path.is_file() else None
        return None


def read_run(run_dir: Path) -> RunArtifacts:
    run = RunPaths(Path(run_dir))
    if not run.root.is_dir():
        raise ModelError(f"{run.root}: no such run folder")
    if not run.config.is_file() and not run.metrics.is_file():
        raise ModelError(f"{run.root}: not a medtk run folder (config.toml and metrics.json missing; run `medtk train` first)")
    benches = [(path.name, run.read_json(path)) for path in _bench_files(run)]
    return RunArtifacts(
        run=run,
        config=_read_toml(run.config),
        data=run.read_json(run.data_summary),
        metrics=run.read_json(run.metrics),
        training=run.read_json(run.training_summary),
        compress=run.read_json(run.compress),
        bench=[(name, report) for name, report in benches if isinstance(report, dict) and report.get("results")],
    )


def _bench_files(run: RunPaths) -> list[Path]:
    extra = sorted(run.root.glob("bench-*.json"))
    return ([run.bench] if run.bench.is_file() else []) + extra


def _read_toml(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ModelError(f"{path}: not valid TOML ({error})") from None

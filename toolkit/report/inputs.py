"""What the report reads from a run folder, each file optional: a stage that did not run is `None`.

Everything comes through `medtk.run.Run` as typed documents; the report needs no TensorFlow. Bench
results come from `RUN/bench.json` and any `RUN/bench-<device>.json`, one device profile each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medtk.errors import ModelError
from medtk.run import Run

if TYPE_CHECKING:
    from medtk.config import RunConfig
    from medtk.runtime.bench import BenchReport
    from medtk.schema import CompressReport, DataSummary, Metrics, TrainingSummary


@dataclass(frozen=True)
class RunArtifacts:
    run: Run
    config: "RunConfig | None"
    data: "DataSummary | None"
    metrics: "Metrics | None"
    training: "TrainingSummary | None"
    compress: "CompressReport | None"
    bench: list[tuple[str, "BenchReport"]] = field(default_factory=list)  # (file name, report)

    @property
    def class_names(self) -> list[str]:
        if self.data is not None:
            return list(self.data.classes)
        return list(self.metrics.class_names) if self.metrics is not None else []

    @property
    def data_source(self) -> str | None:
        if self.data is not None:
            return self.data.source
        return self.config.data.src if self.config is not None else None

    def export_path(self, variant: str) -> Path | None:
        """The exported file of `variant` if compress.json lists it and it is on disk."""
        entry = self.compress.variant(variant) if self.compress else None
        if entry is None:
            return None
        path = self.run.root / entry.path
        return path if path.is_file() else None


def read_run(run_dir: Path) -> RunArtifacts:
    run = Run(Path(run_dir))
    run.require_folder()
    if not run.config_file.is_file() and not run.metrics_file.is_file():
        raise ModelError(f"{run.root}: not a medtk run folder (config.toml and metrics.json missing; run `medtk train` first)")
    return RunArtifacts(
        run=run,
        config=run.config() if run.config_file.is_file() else None,
        data=run.data_summary(),
        metrics=run.metrics(),
        training=run.training(),
        compress=run.compression(),
        bench=[(name, report) for name, report in run.benchmarks() if report.results],
    )

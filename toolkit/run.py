"""The run folder as one typed contract: where every artifact lives, and typed access to each.

Every stage reads and writes a run through `Run`; no module builds a run path by hand. Each JSON file
is a versioned document (`medtk.schema`, `medtk.runtime.bench.BenchReport`): a stage that has not run
yet reads as None, a corrupt or newer file is a one-line `ModelError`. docs/ARCHITECTURE.md lists who
writes and who reads each file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from medtk.errors import MedtkError, ModelError

if TYPE_CHECKING:
    from medtk.config import RunConfig
    from medtk.data import Dataset
    from medtk.jsondoc import Document
    from medtk.runtime.bench import BenchReport
    from medtk.schema import CompressReport, DataSummary, Metrics, TrainingSummary
    from medtk.schema.localization import LocalizationReport
    from medtk.schema.timings import TrainingTimings

D = TypeVar("D", bound="Document")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # --- where each artifact lives -------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def split_file(self) -> Path:
        return self.root / "split.csv"

    @property
    def data_file(self) -> Path:
        return self.root / "data.json"

    @property
    def model_file(self) -> Path:
        return self.root / "model.keras"

    @property
    def prepared_dir(self) -> Path:
        """A folder or CSV source decoded once by training (`medtk.train.prepared.prepare_in_run`)."""
        return self.root / "prepared"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def history_file(self) -> Path:
        return self.root / "history.csv"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.json"

    @property
    def training_file(self) -> Path:
        return self.root / "training.json"

    @property
    def timings_file(self) -> Path:
        """Where training's time went, per epoch and phase, and on which CPU (`medtk-timings/1`)."""
        return self.root / "timings.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def compress_file(self) -> Path:
        return self.root / "compress.json"

    @property
    def bench_file(self) -> Path:
        """Where `medtk bench --json` results for this run go by default (the demo writes it)."""
        return self.root / "bench.json"

    def bench_file_for(self, device: str | None) -> Path:
        """`bench_file` for this host, `bench-<device>.json` for a device profile (canonical name)."""
        return self.bench_file if device is None else self.root / f"bench-{device}.json"

    @property
    def localization_file(self) -> Path:
        """`medtk explain RUN --localization`: explanations scored against lesion masks."""
        return self.root / "localization.json"

    @property
    def explain_dir(self) -> Path:
        """`medtk explain RUN` writes its PNGs here unless --out says otherwise."""
        return self.root / "explain"

    @property
    def report_file(self) -> Path:
        return self.root / "report.html"

    def export_path(self, variant: str) -> Path:
        """`export/<variant>.tflite`, or `.onnx` for the table's ONNX variants."""
        from medtk.variants import format_of

        return self.export / f"{variant}.{format_of(variant)}"

    def eval_dir(self, name: str) -> Path:
        """Results of `medtk eval RUN --data OTHER` (the run's own metrics.json is kept)."""
        return self.root / "eval" / name

    def bench_files(self) -> list[Path]:
        """bench.json, then any bench-<device>.json (one device profile each)."""
        extra = sorted(self.root.glob("bench-*.json"))
        return ([self.bench_file] if self.bench_file.is_file() else []) + extra

    # --- checks ----------------------------------------------------------------------------------
    def require_folder(self) -> None:
        if not self.root.is_dir():
            raise ModelError(f"{self.root}: no such run folder")

    def require_model(self) -> Path:
        self.require_folder()
        if not self.model_file.is_file():
            raise ModelError(f"{self.root}: no trained model ({self.model_file.name} missing; run `medtk train` first)")
        return self.model_file

    def require_complete(self) -> None:
        """A finished `medtk train` run: model, configuration and split all there."""
        self.require_model()
        for path in (self.config_file, self.split_file):
            if not path.is_file():
                raise ModelError(f"{self.root}: {path.name} missing; not a complete `medtk train` run folder")

    # --- typed access ------------------------------------------------------------------------------
    def config(self) -> "RunConfig":
        from medtk.config import load_config

        if not self.config_file.is_file():
            raise ModelError(f"{self.root}: {self.config_file.name} missing; not a medtk run folder")
        return load_config(self.config_file)

    def dataset(self, src: str | None = None) -> "Dataset":
        """The run's data with its saved split; `src` evaluates on another source (all its splits).

        A source named in the run's config that has moved or changed is reported as such.
        """
        from medtk.data import load_dataset

        config = self.config()
        if src is not None:
            return load_dataset(src, seed=config.data.seed)
        if not self.split_file.is_file():
            raise ModelError(f"{self.root}: {self.split_file.name} missing; not a complete `medtk train` run folder")
        source = self.own_prepared(config.data.src) or config.data.src
        try:
            return load_dataset(source, seed=config.data.seed, split_file=self.split_file)
        except MedtkError as error:
            raise type(error)(f"data source of run {self.root} (data.src in {self.config_file.name}): {error}") from None

    def own_prepared(self, src: str) -> str | None:
        """The run's finished `prepared/` when it was made from `src`: its shards are the run's images,
        already decoded (reading them is what `--data RUN/prepared` would do, without decoding `src` again)."""
        from medtk.data.prepared import is_prepared, open_prepared

        if not is_prepared(self.prepared_dir):
            return None
        try:
            made_from = open_prepared(self.prepared_dir).manifest.source.src
        except MedtkError:
            return None  # unfinished or damaged: the source itself is read
        if made_from != src:
            return None
        log.info("reading the run's images from %s (decoded once by train)", self.prepared_dir)
        return str(self.prepared_dir)

    def metrics(self) -> "Metrics | None":
        from medtk.schema import Metrics

        return self._document(self.metrics_file, Metrics)

    def compression(self) -> "CompressReport | None":
        from medtk.schema import CompressReport

        return self._document(self.compress_file, CompressReport)

    def data_summary(self) -> "DataSummary | None":
        from medtk.schema import DataSummary

        return self._document(self.data_file, DataSummary)

    def training(self) -> "TrainingSummary | None":
        from medtk.schema import TrainingSummary

        return self._document(self.training_file, TrainingSummary)

    def timings(self) -> "TrainingTimings | None":
        from medtk.schema.timings import TrainingTimings

        return self._document(self.timings_file, TrainingTimings)

    def localization(self) -> "LocalizationReport | None":
        from medtk.schema.localization import LocalizationReport

        return self._document(self.localization_file, LocalizationReport)

    def benchmarks(self) -> list[tuple[str, "BenchReport"]]:
        """Every bench file of the run as (file name, report)."""
        from medtk.runtime.bench import read_bench_report

        return [(path.name, read_bench_report(path)) for path in self.bench_files()]

    def recommended_export(self) -> tuple[str, Path] | None:
        """The variant compress recommends deploying, if its file is there."""
        report = self.compression()
        if report is None or report.recommended is None:
            return None
        path = self.exported(report.recommended)
        return (report.recommended, path) if path is not None else None

    def bench_models(self) -> list[Path]:
        """What `medtk bench RUN` and the demo measure: the float32 reference, then the variant compress
        recommends (the one a user deploys), each once."""
        models = [path for path in [self.exported("float32")] if path is not None]
        recommended = self.recommended_export()
        if recommended is not None and recommended[1] not in models:
            models.append(recommended[1])
        return models

    def exported(self, variant: str) -> Path | None:
        """The file of `variant` if compress.json lists it and it is on disk."""
        report = self.compression()
        entry = report.variant(variant) if report else None
        if entry is None:
            return None
        path = self.root / entry.path
        return path if path.is_file() else None

    def write(self, path: Path, document: "Document") -> None:
        from medtk.io import atomic_write_json

        atomic_write_json(path, document.to_json())

    def _document(self, path: Path, kind: type[D]) -> D | None:
        raw = read_json(path)
        return None if raw is None else kind.from_json(raw, path)


def read_json(path: Path) -> Any | None:
    """A JSON file's content; None when the file is absent; a one-line `ModelError` when corrupt."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not valid JSON ({error})") from None

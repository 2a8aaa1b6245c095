"""The run folder contract: typed documents round-trip, newer schemas and NaN are refused, today's
files without a schema field still read, and a run's data source is found from any directory."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from medtk.errors import ModelError
from medtk.run import Run
from medtk.schema import CompressReport, Metrics
from medtk.schema.compress import Gate, Headline, Reference, VariantResult
from medtk.schema.metrics import ClassMetrics, SplitMetrics


def _split(auc: float | None = 0.9) -> SplitMetrics:
    return SplitMetrics(
        n=10, auc=auc, accuracy=0.8, balanced_accuracy=0.8, f1=0.8, confusion_matrix=((4, 1), (1, 4)),
        per_class={"normal": ClassMetrics(0.8, 0.8, 0.8, 5, 0.9), "pneumonia": ClassMetrics(0.8, 0.8, 0.8, 5, 0.9)},
        sensitivity=0.8, specificity=0.8, positive_class="pneumonia",
    )


def test_metrics_round_trip_through_the_file(tmp_path: Path):
    run = Run(tmp_path)
    metrics = Metrics(class_names=("normal", "pneumonia"), source="x.npz", val=_split(), test=_split(0.95))
    run.write(run.metrics_file, metrics)
    raw = json.loads(run.metrics_file.read_text())
    assert raw["schema"] == "medtk-metrics/1" and raw["test"]["confusion_matrix"] == [[4, 1], [1, 4]]
    assert run.metrics() == metrics


def test_a_file_without_schema_reads_as_version_one(tmp_path: Path):
    run = Run(tmp_path)
    data = Metrics(class_names=("a", "b"), source="s", test=_split()).to_json()
    del data["schema"]
    run.metrics_file.write_text(json.dumps(data))
    assert run.metrics().test.auc == 0.9


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path: Path):
    run = Run(tmp_path)
    data = Metrics(class_names=("a", "b"), source="s").to_json()
    data["schema"] = "medtk-metrics/7"
    run.metrics_file.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"metrics.json: schema medtk-metrics/7 is newer than this medtk reads"):
        run.metrics()


def test_a_file_of_another_kind_or_broken_is_one_line(tmp_path: Path):
    run = Run(tmp_path)
    run.metrics_file.write_text(json.dumps({"schema": "medtk-compress/1"}))
    with pytest.raises(ModelError, match="is a medtk-compress file, expected medtk-metrics"):
        run.metrics()
    run.metrics_file.write_text("{broken")
    with pytest.raises(ModelError, match="not valid JSON"):
        run.metrics()
    run.metrics_file.write_text(json.dumps({"class_names": ["a"], "source": 3}))
    with pytest.raises(ModelError, match="not a valid medtk-metrics/1 file"):
        run.metrics()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_never_written(tmp_path: Path, bad: float):
    run = Run(tmp_path)
    with pytest.raises(ValueError, match=r"test\.auc is .*never writes NaN or infinity"):
        run.write(run.metrics_file, Metrics(class_names=("a", "b"), source="s", test=_split(bad)))
    assert not run.metrics_file.exists()


def test_absent_stages_read_as_none(tmp_path: Path):
    run = Run(tmp_path)
    assert run.metrics() is None and run.compression() is None and run.benchmarks() == []
    assert run.recommended_export() is None


def test_compress_report_names_the_recommended_variant(tmp_path: Path):
    run = Run(tmp_path)
    headline = Headline(auc=0.9, accuracy=0.8, sensitivity=0.8, specificity=0.8)
    entries = tuple(
        VariantResult(name=name, path=f"export/{name}.tflite", status="passed", input_dtype="float32",
                      size_bytes=size, gzip_bytes=size, sparsity=0.0, test=headline)
        for name, size in (("float32", 100), ("int8", 30))
    )
    report = CompressReport(
        reference=Reference(variant="float32", measured="m", test=headline, test_images=10),
        variants=entries, gate=Gate(max_auc_drop=0.01, passed=True), options={}, recommended="int8",
    )
    run.write(run.compress_file, report)
    assert run.recommended_export() is None  # compress.json names it, but the file is not there
    run.export.mkdir()
    run.export_path("int8").write_bytes(b"x")
    assert run.recommended_export() == ("int8", run.export_path("int8"))
    assert run.compression().variant("int8").size_bytes == 30


def test_relative_data_paths_are_saved_absolute_and_a_moved_source_is_named(tmp_path: Path, monkeypatch):
    from medtk.config import load_config, save_config
    from medtk.data import resolve_source, save_split
    from tests.data.datafiles import make_class_folder

    monkeypatch.chdir(tmp_path)
    make_class_folder(tmp_path / "images", {"a": 12, "b": 12})
    config = load_config(None, {"data": {"src": "images"}})
    config.data.src = resolve_source(config.data.src)
    assert config.data.src == str((tmp_path / "images").resolve())
    run = Run(tmp_path / "run")
    run.root.mkdir()
    save_config(config, run.config_file)
    from medtk.data import load_dataset

    save_split(load_dataset(config.data.src), run.split_file)
    os.chdir(tmp_path / "run")  # another working directory: the saved absolute path still finds it
    assert len(run.dataset().splits["train"]) > 0
    (tmp_path / "images").rename(tmp_path / "moved")
    with pytest.raises(Exception, match=r"data source of run .* \(data.src in config.toml\): .*images"):
        run.dataset()

"""The bench file: a versioned typed document, written atomically and strictly, read back typed."""

import json
from dataclasses import replace

import pytest

from medtk.errors import ModelError
from medtk.runtime.bench import SCHEMA, BenchReport, read_bench_report, write_report


def test_write_report_is_atomic_and_valid_json(tmp_path, here_report):
    target = tmp_path / "out" / "bench.json"
    write_report(here_report, target)
    assert json.loads(target.read_text())["schema"] == SCHEMA
    assert [p.name for p in target.parent.iterdir()] == ["bench.json"]


@pytest.mark.parametrize("fixture", ["here_report", "estimate_report"])
def test_a_written_report_reads_back_equal(fixture, request, tmp_path):
    report = request.getfixturevalue(fixture)
    write_report(report, tmp_path / "bench.json")
    assert read_bench_report(tmp_path / "bench.json") == report


def test_todays_files_read(tmp_path, estimate_report):
    """Files written before `where` was typed carry only the keys of their mode."""
    data = estimate_report.to_json()
    for result in data["results"]:
        result["where"] = {key: value for key, value in result["where"].items() if value is not None}
    (tmp_path / "bench.json").write_text(json.dumps(data))
    report = read_bench_report(tmp_path / "bench.json")
    assert report == estimate_report
    result = report.results[0]
    assert (result.where.mode, result.where.device, result.variant) == ("host-estimate", "raspberry-pi-4", "int8")
    assert result.bare.p50_ms > 0 and result.bare.p90_ms >= result.bare.p50_ms and result.end_to_end.p50_ms > 0
    assert result.estimate.estimated_ms > 0 and result.estimate.reference.precision == "int8"
    assert result.threads >= 1 and result.rss_peak_mb > 0 and result.backend.startswith("ai-edge-litert")


def test_non_finite_numbers_are_refused_before_writing(tmp_path, here_report):
    row = replace(here_report.comparison[0], p50_ms=float("nan"))
    broken = replace(here_report, comparison=(row,))
    with pytest.raises(ValueError, match=r"comparison\[0\]\.p50_ms is nan"):
        write_report(broken, tmp_path / "bench.json")
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such bench file"),
        (b"{not json", "not a JSON bench file"),
        (json.dumps({"schema": "medtk-bench/2", "results": []}).encode(), "newer than this medtk reads"),
        (json.dumps({"schema": "medtk-metrics/1"}).encode(), "expected medtk-bench"),
        (json.dumps({"schema": SCHEMA, "results": "none"}).encode(), "not a valid medtk-bench/1 file"),
    ],
)
def test_bad_files_are_one_line_model_errors(tmp_path, content, message):
    path = tmp_path / "bench.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as error:
        read_bench_report(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_the_document_schema_is_the_bench_schema():
    assert BenchReport.SCHEMA == SCHEMA == "medtk-bench/1"
